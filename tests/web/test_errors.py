"""Every request error carries a status, a code and a detail."""

from __future__ import annotations

import json

import pytest

from tests.web.factories import BUILD, Clock, asgi_call
from tests.web.replicas import StaticReplica
from topcoins.settings import Settings
from topcoins.web.app import create_app
from topcoins.web.errors import IncompleteGeneration, InvalidParameter, NoDataYet


def test_request_errors() -> None:
    bad = InvalidParameter("invalid_limit", "limit must be ...")
    assert (bad.status_code, bad.code, bad.detail, dict(bad.headers)) == (
        400,
        "invalid_limit",
        "limit must be ...",
        {},
    )
    waiting = NoDataYet()
    assert waiting.status_code == 503
    assert waiting.headers == {"Retry-After": "5"}


def test_incomplete_generation_message_is_bounded() -> None:
    missing = tuple(f"S{i}" for i in range(30))
    error = IncompleteGeneration(missing, 200)
    assert error.missing == missing
    assert "200 symbols but 30 have no row (S0, S1" in str(error)
    assert "S10" not in str(error) and str(error).count("...") == 1


@pytest.mark.parametrize(("method", "status"), [("GET", 404), ("POST", 405)])
async def test_a_non_utf8_query_on_a_path_or_method_error_is_still_a_json_4xx(
    method: str, status: int
) -> None:
    # Regression (found by the fuzz test): the handlers read request.url.path, and building
    # request.url decodes the raw query string as UTF-8, so this was a 500.
    app = create_app(Settings(), StaticReplica(), build=BUILD, clock=Clock())
    path = "/nowhere" if status == 404 else "/healthz"
    sent = await asgi_call(app, method, path, b"\x80=\xff")
    assert sent[0]["status"] == status
    assert json.loads(sent[1]["body"])["error"] in {"not_found", "method_not_allowed"}
