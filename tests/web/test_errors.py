"""One exception tree; every request error carries a status, a code and a detail."""

from __future__ import annotations

from topcoins.web.errors import (
    IncompleteGeneration,
    InvalidMessage,
    InvalidParameter,
    NoDataYet,
    ReplicaError,
    RequestError,
    WebError,
)


def test_hierarchy() -> None:
    assert issubclass(RequestError, WebError)
    assert issubclass(ReplicaError, WebError)
    assert issubclass(InvalidParameter, RequestError)
    assert issubclass(NoDataYet, RequestError)
    assert issubclass(InvalidMessage, ReplicaError)
    assert issubclass(IncompleteGeneration, ReplicaError)


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
