import pytest

from tests.emulator.conftest import CC_KEY, CMC_HEADERS, CMC_KEY, client_for

CMC = "/v1/cryptocurrency/listings/latest"
CC = "/data/top/totalvolfull"


async def test_cmc_listings(client, emulator):
    response = await client.get(CMC, params={"limit": 200}, headers=CMC_HEADERS)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"]["error_code"] == 0
    assert [i["cmc_rank"] for i in body["data"]] == list(range(1, 201))
    prices = emulator.market.prices()
    assert all(i["quote"]["USD"]["price"] == prices[i["id"]] for i in body["data"])


async def test_cmc_key_in_query(client):
    response = await client.get(CMC, params={"CMC_PRO_API_KEY": CMC_KEY, "limit": 1})
    assert response.status_code == 200


async def test_cmc_pages_continue(client):
    pages = []
    for start in (1, 101):
        params = {"start": start, "limit": 100}
        pages.append((await client.get(CMC, params=params, headers=CMC_HEADERS)).json()["data"])
    assert [i["cmc_rank"] for i in pages[0] + pages[1]] == list(range(1, 201))
    last = await client.get(CMC, params={"start": 650, "limit": 100}, headers=CMC_HEADERS)
    assert len(last.json()["data"]) == 51


async def test_cmc_lists_both_hot(client):
    body = (await client.get(CMC, params={"limit": 5000}, headers=CMC_HEADERS)).json()
    assert sorted(i["id"] for i in body["data"] if i["symbol"] == "HOT") == [2467, 2682]
    assert {"GAPS", "HYN", "PLF", "ELAMA"}.isdisjoint(i["symbol"] for i in body["data"])


async def test_cmc_missing_key_is_the_real_1002(client, fixture_json):
    response = await client.get(CMC)
    assert response.status_code == 401
    real = fixture_json("cmc_error_1002_api-key-missing_2020-03-23.json")
    assert response.json().keys() == real.keys()
    assert response.json()["status"].keys() == real["status"].keys()
    assert response.json()["status"]["error_code"] == 1002
    assert response.json()["status"]["error_message"] == "API key missing."


async def test_cmc_wrong_key(client):
    response = await client.get(CMC, headers={"X-CMC_PRO_API_KEY": "wrong"})
    assert response.status_code == 401
    assert response.json()["status"]["error_code"] == 1001
    assert response.json()["status"]["error_message"] == "This API Key is invalid."
    assert "data" not in response.json()


async def test_cmc_without_configured_key_takes_any_key(make_app):
    async with client_for(make_app(cmc_api_key="")) as client:
        assert (await client.get(CMC, headers={"X-CMC_PRO_API_KEY": "x"})).status_code == 200
        assert (await client.get(CMC)).status_code == 401


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"start": 0}, '"start"'),
        ({"start": "one"}, '"start"'),
        ({"limit": 0}, '"limit"'),
        ({"limit": 5001}, '"limit"'),
        ({"convert": "EUR"}, '"convert"'),
        ({"sort": "rank"}, '"sort"'),
        ({"sort_dir": "up"}, '"sort_dir"'),
    ],
)
async def test_cmc_bad_parameters(client, params, fragment):
    response = await client.get(CMC, params=params, headers=CMC_HEADERS)
    assert response.status_code == 400
    status = response.json()["status"]
    assert status["error_code"] == 400
    assert fragment in status["error_message"]


async def test_cc_toplist(client, emulator):
    response = await client.get(CC, params={"tsym": "USD", "limit": 100})
    body = response.json()
    assert (response.status_code, body["Message"], body["Type"]) == (200, "Success", 100)
    assert body["MetaData"]["Count"] == 500
    truth = emulator.market.snapshot()["ranking"]
    assert [i["CoinInfo"]["Name"] for i in body["Data"]] == [r["symbol"] for r in truth[:100]]


async def test_cc_default_limit_and_clamping(client):
    async def count(**params):
        response = await client.get(CC, params={"tsym": "USD", **params})
        return len(response.json()["Data"])

    assert await count() == 10
    assert await count(limit=5) == 10
    assert await count(limit=500) == 100


async def test_cc_pages_are_disjoint_and_continue(client, emulator):
    pages = []
    for page in (0, 1):
        params = {"tsym": "USD", "limit": 100, "page": page}
        pages.append(
            [i["CoinInfo"]["Name"] for i in (await client.get(CC, params=params)).json()["Data"]]
        )
    assert not set(pages[0]) & set(pages[1])
    truth = [r["symbol"] for r in emulator.market.snapshot()["ranking"][:200]]
    assert pages[0] + pages[1] == truth
    past_end = await client.get(CC, params={"tsym": "USD", "limit": 100, "page": 9})
    assert past_end.json()["Data"] == []


async def test_cc_issue_3_cases_are_ranked(client):
    symbols, bare = [], []
    for page in range(5):
        params = {"tsym": "USD", "limit": 100, "page": page}
        for item in (await client.get(CC, params=params)).json()["Data"]:
            symbols.append(item["CoinInfo"]["Name"])
            if "RAW" not in item:
                bare.append(item["CoinInfo"]["Name"])
    assert {"TONCOIN", "HOT", "HOT*", "GAPS", "HYN", "PLF", "ELAMA"} <= set(symbols)
    assert "TON" not in symbols
    assert sorted(bare) == ["CUSDC", "EVMOS"]


async def test_cc_tsym_required_is_the_real_body(client, fixture_json):
    response = await client.get(CC)
    assert response.status_code == 200
    assert response.json() == fixture_json("cc_error_tsym-required_mktcapfull_2026-01-02.json")


async def test_cc_other_tsym(client):
    body = (await client.get(CC, params={"tsym": "EUR"})).json()
    assert (body["Response"], body["Type"], body["ParamWithError"]) == ("Error", 2, "tsym")


async def test_cc_unknown_data_path_is_the_real_body(client, fixture_json):
    response = await client.get("/data/top/totalvolumefull", params={"tsym": "USD"})
    real = fixture_json("cc_error_path-does-not-exist_totalvolumefull-typo_2026-01-02.json")
    assert response.json() == real


async def test_cc_key_when_configured(make_app, fixture_json):
    real = fixture_json("cc_error_auth-required_2026-01-02.json")
    async with client_for(make_app(cryptocompare_api_key=CC_KEY)) as client:
        params = {"tsym": "USD"}
        for extra, headers in [
            ({}, {}),
            ({"api_key": "wrong"}, {}),
            ({}, {"authorization": "Apikey x"}),
        ]:
            response = await client.get(CC, params=params | extra, headers=headers)
            assert (response.status_code, response.json()) == (200, real)
        ok_query = await client.get(CC, params=params | {"api_key": CC_KEY})
        ok_header = await client.get(
            CC, params=params, headers={"authorization": f"Apikey {CC_KEY}"}
        )
        assert ok_query.json()["Type"] == ok_header.json()["Type"] == 100


async def test_cmc_key_info_counts_credits_and_calls(client):
    for limit in (200, 500):  # 1 + 3 credits
        await client.get(CMC, params={"limit": limit}, headers=CMC_HEADERS)
    await client.get(
        "/v2/cryptocurrency/quotes/latest", params={"id": "1,1027"}, headers=CMC_HEADERS
    )  # 1 credit
    response = await client.get("/v1/key/info", headers=CMC_HEADERS)
    assert response.status_code == 200
    body = response.json()
    assert body["status"]["error_code"] == 0
    assert body["status"]["credit_count"] == 0  # key info is free
    plan, usage = body["data"]["plan"], body["data"]["usage"]
    assert (plan["credit_limit_monthly"], plan["rate_limit_minute"]) == (10_000, 30)
    assert plan["credit_limit_monthly_reset"].startswith("In ")
    assert plan["credit_limit_monthly_reset_timestamp"].endswith("-01T00:00:00.000Z")
    assert usage["current_minute"] == {"requests_made": 4, "requests_left": 26}
    assert usage["current_day"] == {"credits_used": 5}
    assert usage["current_month"] == {"credits_used": 5, "credits_left": 9_995}


async def test_cmc_key_info_refuses_a_wrong_key(client):
    response = await client.get("/v1/key/info", headers={"X-CMC_PRO_API_KEY": "wrong"})
    assert (response.status_code, response.json()["status"]["error_code"]) == (401, 1001)


async def test_cc_rate_limit_counts_calls(make_app):
    async with client_for(make_app(cryptocompare_api_key=CC_KEY)) as client:
        headers = {"authorization": f"Apikey {CC_KEY}"}
        await client.get(CC, params={"tsym": "USD"}, headers=headers)
        response = await client.get("/stats/rate/limit", headers=headers)
        body = response.json()
        assert (response.status_code, body["Response"], body["Type"]) == (200, "Success", 100)
        made = body["Data"]["calls_made"]
        assert set(made) == {"second", "minute", "hour", "day", "month"}
        assert [made[w] for w in ("minute", "hour", "day", "month")] == [2, 2, 2, 2]
        assert body["Data"]["calls_left"]["minute"] == 298
        assert body["Data"]["calls_left"]["day"] == 7_498
        refused = await client.get("/stats/rate/limit", headers={"authorization": "Apikey x"})
        assert (refused.json()["Response"], refused.json()["Type"]) == ("Error", 1)


async def test_cmc_listings_and_quotes_carry_market_cap_and_24h_change(client):
    listings = (await client.get(CMC, params={"limit": 200}, headers=CMC_HEADERS)).json()
    quotes = await client.get(
        "/v2/cryptocurrency/quotes/latest", params={"id": "1,1027"}, headers=CMC_HEADERS
    )
    usds = [item["quote"]["USD"] for item in listings["data"]]
    usds += [item["quote"]["USD"] for item in quotes.json()["data"].values()]
    assert len(usds) == 202
    for usd in usds:
        assert isinstance(usd["market_cap"], float) and usd["market_cap"] > 0
        assert isinstance(usd["percent_change_24h"], float) and usd["percent_change_24h"] > -100
    caps = [usd["market_cap"] for usd in usds[:200]]
    assert caps == sorted(caps, reverse=True)  # listings come sorted by market cap
