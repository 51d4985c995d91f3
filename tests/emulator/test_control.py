from tests.emulator.conftest import CMC_HEADERS

CMC = "/v1/cryptocurrency/listings/latest"
CC = "/data/top/totalvolfull"


async def test_healthz(client):
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_state_is_what_the_providers_serve(client):
    state = (await client.get("/_emulator/state")).json()
    assert set(state) >= {"ranking", "prices", "listings", "paused", "ticks", "faults"}
    assert set(state["ranking"][0]) >= {"position", "symbol", "name", "cc_id", "volume_24h_usd"}
    assert {"cmc_id", "has_raw"} <= set(state["ranking"][0])
    cc = (await client.get(CC, params={"tsym": "USD", "limit": 100})).json()["Data"]
    assert [r["symbol"] for r in state["ranking"][:100]] == [i["CoinInfo"]["Name"] for i in cc]
    cmc = (await client.get(CMC, params={"limit": 5000}, headers=CMC_HEADERS)).json()["data"]
    assert {str(i["id"]): i["quote"]["USD"]["price"] for i in cmc} == state["prices"]


async def test_set_price(client):
    response = await client.post(
        "/_emulator/assets/price", json={"cmc_id": 11419, "price_usd": 9.5}
    )
    assert response.json() == {"cmc_id": 11419, "symbol": "TONCOIN", "price_usd": 9.5}
    cmc = (await client.get(CMC, params={"limit": 5000}, headers=CMC_HEADERS)).json()["data"]
    assert next(i for i in cmc if i["id"] == 11419)["quote"]["USD"]["price"] == 9.5
    cc = (await client.get(CC, params={"tsym": "USD", "limit": 100})).json()["Data"]
    assert next(i for i in cc if i["CoinInfo"]["Name"] == "TONCOIN")["RAW"]["USD"]["PRICE"] == 9.5


async def test_set_volume_moves_the_rank(client):
    response = await client.post(
        "/_emulator/assets/volume", json={"symbol": "GAPS", "volume_24h_usd": 1e12}
    )
    assert response.json() == {
        "symbol": "GAPS",
        "volume_24h_usd": 1e12,
        "position": 1,
        "cmc_id": None,
    }
    cc = (await client.get(CC, params={"tsym": "USD"})).json()["Data"]
    assert cc[0]["CoinInfo"]["Name"] == "GAPS"
    assert cc[0]["RAW"]["USD"]["TOTALVOLUME24HTO"] == 1e12


async def test_control_errors(client):
    cases = [
        ("/_emulator/assets/price", {"cmc_id": 1}, 400, "missing_field"),
        ("/_emulator/assets/price", {"cmc_id": "1", "price_usd": 1}, 400, "invalid_value"),
        ("/_emulator/assets/price", {"cmc_id": 123456789, "price_usd": 1}, 404, "unknown_asset"),
        ("/_emulator/assets/price", {"cmc_id": 1, "price_usd": 0}, 400, "invalid_value"),
        ("/_emulator/assets/volume", {"symbol": "TON", "volume_24h_usd": 1}, 404, "unknown_asset"),
    ]
    for path, body, status, error in cases:
        response = await client.post(path, json=body)
        assert (response.status_code, response.json()["error"]) == (status, error), body
    response = await client.post("/_emulator/assets/price", content=b"{not json")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_json")


async def test_pause_resume_and_tick(client, emulator):
    assert (await client.post("/_emulator/pause")).json()["paused"] is True
    assert emulator.market.paused
    assert (await client.post("/_emulator/tick", params={"count": 3})).json()["ticks"] == 3
    assert (await client.post("/_emulator/tick", params={"count": 0})).status_code == 400
    assert (await client.post("/_emulator/resume")).json() == {"paused": False, "ticks": 3}


async def test_calls(client):
    await client.get(CMC, headers=CMC_HEADERS)
    await client.get(CMC)
    await client.get(CC, params={"tsym": "USD"})
    calls = (await client.get("/_emulator/calls")).json()
    assert calls["coinmarketcap"][CMC]["count"] == 2
    assert len(calls["coinmarketcap"][CMC]["recent"]) == 2
    assert calls["cryptocompare"][CC]["count"] == 1
    cleared = (await client.delete("/_emulator/calls")).json()
    assert cleared == {"coinmarketcap": {}, "cryptocompare": {}}
