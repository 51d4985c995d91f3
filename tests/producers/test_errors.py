"""Every provider failure surfaces as exactly one ``UpstreamError`` subclass that names its
provider and shows the key nowhere (message, repr, traceback)."""

from __future__ import annotations

import traceback

import httpx
import pytest

from tests.producers import test_coinmarketcap as cmc
from tests.producers import test_cryptocompare as cc
from tests.producers.conftest import API_KEY, Recorder
from topcoins.producers.errors import ServerError, UpstreamTimeout

# (fetch, depth): each client's answers in its test module's ERROR_CASES.
CLIENTS = {"coinmarketcap": (cmc.fetch, 100), "cryptocompare": (cc.fetch, 10)}
# Failures before any answer, the same for every provider.
TRANSPORT_CASES = [
    pytest.param(httpx.ReadTimeout("timed out"), UpstreamTimeout, id="read-timeout"),
    pytest.param(httpx.ConnectTimeout("timed out"), UpstreamTimeout, id="connect-timeout"),
    pytest.param(httpx.ConnectError("Connection refused"), ServerError, id="connect-error"),
]
CASES = [
    pytest.param(provider, *case.values, id=f"{provider}-{case.id}")
    for provider, cases in (("coinmarketcap", cmc.ERROR_CASES), ("cryptocompare", cc.ERROR_CASES))
    for case in (*cases, *TRANSPORT_CASES)
]


@pytest.mark.parametrize(("provider", "answer", "expected"), CASES)
async def test_errors_map_to_one_exception_without_the_key(make_http, provider, answer, expected):
    fetch, depth = CLIENTS[provider]

    with pytest.raises(expected) as caught:
        await fetch(make_http, Recorder(answer), depth=depth)

    error = caught.value
    assert type(error) is expected
    assert error.provider == provider
    rendered = "".join(traceback.format_exception(error)) + repr(error) + str(error)
    assert API_KEY not in rendered
