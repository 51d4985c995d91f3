"""The emulator's ``GET /v2/cryptocurrency/quotes/latest``: listing items keyed by id."""

import pytest

from tests.emulator.conftest import CMC_HEADERS
from topcoins.emulator.faults import Fault

QUOTES = "/v2/cryptocurrency/quotes/latest"
LISTINGS = "/v1/cryptocurrency/listings/latest"


async def test_quotes_are_the_listing_items_keyed_by_id(client, emulator):
    listing = (await client.get(LISTINGS, params={"limit": 300}, headers=CMC_HEADERS)).json()
    wanted = [item["id"] for item in listing["data"][::2]]  # 150 ids

    response = await client.get(
        QUOTES, params={"id": ",".join(map(str, wanted)), "convert": "USD"}, headers=CMC_HEADERS
    )

    assert response.status_code == 200
    body = response.json()
    assert body["status"]["error_code"] == 0
    assert body["status"]["credit_count"] == 2  # 1 credit per 100 ids
    assert list(body["data"]) == [str(cmc_id) for cmc_id in wanted]
    items = {item["id"]: item for item in listing["data"]}
    prices = emulator.market.prices()
    for key, item in body["data"].items():
        assert item == items[int(key)]
        assert item["quote"]["USD"]["price"] == prices[int(key)]


async def test_unknown_ids_fail_unless_skipped(client):
    params = {"id": "1,999999999"}

    refused = await client.get(QUOTES, params=params, headers=CMC_HEADERS)
    skipped = await client.get(
        QUOTES, params={**params, "skip_invalid": "true"}, headers=CMC_HEADERS
    )

    assert refused.status_code == 400
    assert '"id": "999999999"' in refused.json()["status"]["error_message"]
    assert skipped.status_code == 200
    assert list(skipped.json()["data"]) == ["1"]


@pytest.mark.parametrize("params", [{}, {"id": "one"}, {"id": "1", "convert": "EUR"}])
async def test_bad_parameters_are_400(client, params):
    response = await client.get(QUOTES, params=params, headers=CMC_HEADERS)

    assert response.status_code == 400
    assert response.json()["status"]["error_code"] == 400


async def test_key_and_faults_as_for_listings(client, emulator):
    assert (await client.get(QUOTES, params={"id": "1"})).status_code == 401
    emulator.faults.set(("coinmarketcap",), Fault("server_error", remaining=1, status=503))

    response = await client.get(QUOTES, params={"id": "1"}, headers=CMC_HEADERS)

    assert response.status_code == 503
    assert emulator.calls.snapshot()["coinmarketcap"][QUOTES]["count"] == 2
