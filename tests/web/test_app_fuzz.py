"""Bad HTTP input: random paths, query strings, methods and headers never get a 5xx.

Two layers, each with and without data to serve:

* through ``httpx.ASGITransport`` (what a client can put on the wire through httpx:
  percent-encoded unicode, repeated and empty keys, huge values, garbage headers);
* straight into the ASGI app with hand-built scopes, for the bytes httpx would normalise
  away (non-UTF-8 query strings and header values, unescaped paths).

Every answer must be below 500 with a well-formed body: JSON that parses (and, for an
error, says ``error`` and ``detail``), CSV that decodes, nothing at all for a 304.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from tests.web.factories import (
    BUILD,
    SAMPLE_ROWS,
    Clock,
    FakeHistory,
    asgi_call,
    join_of,
    view_of,
)
from tests.web.replicas import StaticReplica
from topcoins.settings import Settings
from topcoins.web.app import create_app

KNOWN_PATHS = ["/", "/status", "/readyz", "/healthz", "/version", "/metrics", "/diagnostics"]
METHODS = ["GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
PARAM_NAMES = ["limit", "format", "at", "", "LIMIT", "limit[]", "format ", "x", "ü", "%00"]

# Kept under 2 kB each so that hypothesis can still print a failing example.
huge = st.integers(min_value=1, max_value=2_000).map(lambda n: "9" * n)
param_values = st.one_of(
    st.sampled_from(["1", "10", "200", "201", "0", "-1", "json", "csv", "CSV", "xml", ""]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(max_size=40),
    huge,
)
param_names = st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=12))
# Repeated and empty keys come from drawing several pairs from a small name set.
query_params = st.lists(st.tuples(param_names, param_values), max_size=8)
raw_query = st.one_of(
    # printable ASCII but "#": httpx refuses the rest (the raw-bytes test sends them)
    st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="#"),
        max_size=200,
    ),
    st.sampled_from(["limit=%ZZ", "limit=%", "&&&", "=", "==&=", "limit=1%00", "a=%FF%FE"]),
)
paths = st.one_of(
    st.sampled_from(KNOWN_PATHS),
    st.sampled_from(KNOWN_PATHS).map(lambda path: path + "/"),
    st.text(max_size=60).map(lambda text: "/" + text),
    st.sampled_from(["//", "/..", "/%2e%2e/", "/%ZZ", "/%00", "/\\", "/./status"]),
)
accepts = st.one_of(
    st.sampled_from(
        [
            "text/csv",
            "application/json",
            "*/*",
            "text/*;q=0.9, application/json;q=0.1",
            "text/csv;q=nan",
            "text/csv;q=inf",
            "text/csv;q=1e999, */*;q=-1",
            ";;;,,,",
            "text/csv;q",
            "/",
        ]
    ),
    st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=80),
)
etags = st.one_of(
    st.sampled_from(["*", 'W/"', '"', 'W/W/"x"', '"x", W/"y"', ",,,", "W/", '""']),
    st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=80),
)
header_values = st.text(
    alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=100
)
extra_headers = st.lists(
    st.tuples(
        st.sampled_from(
            ["accept", "if-none-match", "if-modified-since", "host", "range", "content-type"]
        ),
        header_values,
    ),
    max_size=4,
)


def check_answer(
    harness: Harness, status: int, headers: httpx.Headers, body: bytes, method: str
) -> None:
    """No 5xx (bar the documented 503 before any data), no redirect, a well-formed body."""
    assert status < 500 or (status == 503 and not harness.has_data), (status, body[:300])
    assert not 300 <= status < 400 or status == 304, status
    if status == 304:
        assert body == b""
        return
    if method == "HEAD" and not body:
        return  # (Starlette's error answers to HEAD carry a body; the server drops it)
    media_type = headers.get("content-type", "")
    if media_type.startswith("application/json"):
        document = json.loads(body)
        if status >= 400:
            assert set(document) == {"error", "detail"}
            assert isinstance(document["error"], str) and isinstance(document["detail"], str)
    elif media_type.startswith("text/csv"):
        rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
        assert rows[0] == ["Rank", "Symbol", "Price USD"]
    else:
        assert media_type.startswith("text/plain"), media_type  # /metrics
        body.decode("utf-8")
    if status == 503:
        assert headers["retry-after"] == "5"
        assert json.loads(body)["error"] in {"no_data_yet", "not_ready"}


def on_the_wire(path: str) -> httpx.URL:
    """``path`` as a client can send it: control and non-ASCII characters %-escaped (httpx
    refuses them raw); ``%`` kept as is, so invalid escapes such as ``%ZZ`` still go out."""
    return httpx.URL(quote(path, safe="/%"))


def make_app(has_data: bool) -> Starlette:
    replica = StaticReplica(view_of(SAMPLE_ROWS) if has_data else None)
    # A valid random `at` reaches the history reader: it answers (there is no broker here).
    history = FakeHistory(join_of(list(SAMPLE_ROWS)))
    return create_app(Settings(), replica, build=BUILD, clock=Clock(), history=history)


class Harness:
    """One app, one event loop and one httpx client shared by every example of a test."""

    def __init__(self, has_data: bool) -> None:
        self.has_data = has_data
        self.runner = asyncio.Runner()
        self.app = make_app(has_data)
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    def close(self) -> None:
        self.runner.run(self.client.aclose())
        self.runner.close()


@pytest.fixture(scope="module", params=[True, False], ids=["with data", "no data yet"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    harness = Harness(request.param)
    yield harness
    harness.close()


FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(
    method=st.sampled_from(METHODS),
    path=paths,
    params=query_params,
    accept=st.none() | accepts,
    if_none_match=st.none() | etags,
    headers=extra_headers,
)
def test_httpx_requests_never_get_a_5xx(
    harness: Harness,
    method: str,
    path: str,
    params: list[tuple[str, str]],
    accept: str | None,
    if_none_match: str | None,
    headers: list[tuple[str, str]],
) -> None:
    sent: list[tuple[bytes, bytes]] = [
        (name.encode(), value.encode("latin-1")) for name, value in headers
    ]
    if accept is not None:
        sent.append((b"accept", accept.encode("latin-1")))
    if if_none_match is not None:
        sent.append((b"if-none-match", if_none_match.encode("latin-1")))
    url = on_the_wire(path).copy_with(params=params) if params else on_the_wire(path)
    response = harness.runner.run(harness.client.request(method, url, headers=sent))
    check_answer(harness, response.status_code, response.headers, response.content, method)


@FUZZ
@given(method=st.sampled_from(METHODS), path=paths, query=raw_query)
def test_raw_ascii_query_strings_through_httpx(
    harness: Harness, method: str, path: str, query: str
) -> None:
    url = on_the_wire(path).copy_with(query=query.encode("ascii"))
    response = harness.runner.run(harness.client.request(method, url))
    check_answer(harness, response.status_code, response.headers, response.content, method)


async def call_raw(
    app: Starlette, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, httpx.Headers, bytes]:
    messages = await asgi_call(app, method, path, query, headers)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], httpx.Headers(start["headers"]), body


@FUZZ
@given(
    method=st.sampled_from(METHODS),
    path=paths,
    query=st.binary(max_size=300),
    headers=st.lists(
        st.tuples(
            st.sampled_from([b"accept", b"if-none-match", b"host", b"x-anything"]),
            st.binary(max_size=100),
        ),
        max_size=4,
    ),
)
def test_raw_bytes_straight_into_the_app(
    harness: Harness,
    method: str,
    path: str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
) -> None:
    status, sent_headers, body = harness.runner.run(
        call_raw(harness.app, method, path, query, headers)
    )
    check_answer(harness, status, sent_headers, body, method)
