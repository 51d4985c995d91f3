"""Prepared answers, their headers, and ETag comparison."""

from __future__ import annotations

from typing import Any

import pytest

from topcoins.web.responses import PreparedResponse, error_response, etag_matches


def test_prepared_response_headers() -> None:
    prepared = PreparedResponse.build(b'{"a":1}', "application/json", {"Vary": "Accept"})
    headers = dict(prepared.headers)
    assert prepared.status == 200
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == b"7"
    assert headers[b"vary"] == b"Accept"
    assert headers[b"etag"] == prepared.etag
    assert prepared.etag.startswith(b'"') and prepared.etag.endswith(b'"')
    assert dict(prepared.not_modified_headers) == {b"etag": prepared.etag, b"vary": b"Accept"}


async def test_send_full_head_and_not_modified() -> None:
    prepared = PreparedResponse.build(b"hello", "text/plain")
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    await prepared.send(send)
    await prepared.send(send, head=True)
    await prepared.send(send, not_modified=True)
    assert [(m.get("status"), m.get("body")) for m in sent] == [
        (200, None),
        (None, b"hello"),
        (200, None),
        (None, b""),
        (304, None),
        (None, b""),
    ]
    assert (b"content-length", b"5") in sent[2]["headers"]
    assert not any(name == b"content-length" for name, _ in sent[4]["headers"])


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (b'"abc"', True),
        (b'W/"abc"', True),
        (b'"x", "abc"', True),
        (b'"x",W/"abc"', True),
        (b"*", True),
        (b'"abcd"', False),
        (b"abc", False),
        (b"", False),
    ],
)
def test_etag_matches_weakly(header: bytes, matches: bool) -> None:
    assert etag_matches(header, b'"abc"') is matches
    assert etag_matches(header, b'W/"abc"') is matches  # our weak tags compare the same way


def test_a_given_etag_is_used_as_is() -> None:
    prepared = PreparedResponse.build(b"{}", "application/json", etag=b'W/"v1"')
    assert prepared.etag == b'W/"v1"'
    assert dict(prepared.headers)[b"etag"] == b'W/"v1"'
    assert dict(prepared.not_modified_headers) == {b"etag": b'W/"v1"'}


def test_error_response_body() -> None:
    response = error_response(400, "invalid_limit", "limit must be ...", {"X-A": "1"})
    assert response.status_code == 400
    assert response.body == b'{"error":"invalid_limit","detail":"limit must be ..."}'
    assert response.headers["x-a"] == "1"
    assert response.media_type == "application/json"
