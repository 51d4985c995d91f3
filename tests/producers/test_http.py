"""``_http.get``: every provider call is timed by outcome (``CALL_SECONDS``)."""

from __future__ import annotations

import httpx
import pytest

from tests.producers.conftest import Recorder
from topcoins.producers import _http
from topcoins.producers.errors import ServerError, UpstreamTimeout
from topcoins.producers.metrics import CALL_SECONDS, call_outcome

PROVIDER = "test-provider"


def observed(outcome: str) -> float:
    """How many calls of PROVIDER were observed with ``outcome``."""
    for family in CALL_SECONDS.collect():
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels == {
                "provider": PROVIDER,
                "outcome": outcome,
            }:
                return sample.value
    return 0.0


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (httpx.Response(200, json={}), "ok"),
        (httpx.Response(429), "rate_limited"),
        (httpx.Response(401), "client_error"),
        (httpx.Response(503), "server_error"),
    ],
)
async def test_answers_are_timed_by_outcome(make_http, answer, outcome) -> None:
    before = observed(outcome)
    http = make_http(Recorder(answer), "https://provider.test")
    response = await _http.get(http, "/v1/x", params={}, headers={}, provider=PROVIDER)
    assert response.status_code == answer.status_code
    assert observed(outcome) == before + 1


@pytest.mark.parametrize(
    ("failure", "error", "outcome"),
    [
        (httpx.ReadTimeout("slow"), UpstreamTimeout, "timeout"),
        (httpx.ConnectError("refused"), ServerError, "transport_error"),
    ],
)
async def test_failed_calls_are_timed_by_outcome(make_http, failure, error, outcome) -> None:
    before = observed(outcome)
    http = make_http(Recorder(failure), "https://provider.test")
    with pytest.raises(error):
        await _http.get(http, "/v1/x", params={}, headers={}, provider=PROVIDER)
    assert observed(outcome) == before + 1


def test_call_outcome_by_status() -> None:
    assert [call_outcome(code) for code in (204, 304, 404, 429, 500)] == [
        "ok",
        "ok",
        "client_error",
        "rate_limited",
        "server_error",
    ]
