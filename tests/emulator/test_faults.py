import time

import pytest

from tests.emulator.conftest import CMC_HEADERS, FakeClock
from topcoins.emulator.faults import Fault, FaultBook, parse_fault_request

CMC = "/v1/cryptocurrency/listings/latest"
CC = "/data/top/totalvolfull"
CC_PARAMS = {"tsym": "USD"}


def test_count_runs_out():
    book = FaultBook()
    book.set(("coinmarketcap",), Fault("auth", remaining=2))
    assert [book.take("coinmarketcap") is not None for _ in range(3)] == [True, True, False]
    assert book.take("cryptocompare") is None


def test_seconds_run_out():
    clock = FakeClock(100.0)
    book = FaultBook(clock)
    providers, fault = parse_fault_request(
        {"provider": "both", "mode": "slow", "seconds": 5}, clock()
    )
    book.set(providers, fault)
    assert book.describe()["cryptocompare"]["seconds"] == 5
    clock.now += 4.9
    assert book.take("coinmarketcap") is not None
    clock.now += 0.2
    assert book.take("coinmarketcap") is None
    assert book.describe() == {"coinmarketcap": None, "cryptocompare": None}


def test_mode_none_clears():
    book = FaultBook()
    book.set(*parse_fault_request({"provider": "both", "mode": "auth"}, 0))
    book.set(*parse_fault_request({"provider": "cryptocompare", "mode": "none"}, 0))
    assert book.describe()["cryptocompare"] is None
    assert book.describe()["coinmarketcap"]["mode"] == "auth"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"provider": "coingecko", "mode": "auth"},
        {"provider": "both", "mode": "explode"},
        {"provider": "both", "mode": "auth", "count": 0},
        {"provider": "both", "mode": "slow", "delay": -1},
        {"provider": "both", "mode": "server_error", "status": 404},
    ],
)
def test_rejects_bad_requests(payload):
    with pytest.raises(ValueError):
        parse_fault_request(payload, 0)


async def _fault(client, **payload):
    response = await client.post("/_emulator/faults", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


async def test_rate_limit(client, fixture_json):
    await _fault(client, provider="both", mode="rate_limit", count=1)
    cmc = await client.get(CMC, headers=CMC_HEADERS)
    assert cmc.status_code == 429
    assert 1 <= int(cmc.headers["retry-after"]) <= 60
    assert cmc.json()["status"]["error_code"] == 1008
    assert "Rate limits reset every minute" in cmc.json()["status"]["error_message"]
    cc = await client.get(CC, params=CC_PARAMS)
    real = fixture_json("cc_error_ratelimit_2024-07-29_http200.json")
    assert cc.status_code == 200
    assert cc.json().keys() == real.keys()
    assert cc.json()["RateLimit"]["calls_made"].keys() == real["RateLimit"]["calls_made"].keys()
    assert cc.json()["RateLimit"]["max_calls"] == real["RateLimit"]["max_calls"]
    assert cc.json()["RateLimit"]["calls_made"]["total_calls"] == 1
    assert (await client.get(CMC, headers=CMC_HEADERS)).status_code == 200  # count used up


async def test_auth(client, fixture_json):
    await _fault(client, provider="both", mode="auth")
    cmc = await client.get(CMC, headers=CMC_HEADERS)
    assert (cmc.status_code, cmc.json()["status"]["error_code"]) == (401, 1001)
    cc = await client.get(CC, params=CC_PARAMS)
    assert cc.json() == fixture_json("cc_error_auth-required_2026-01-02.json")


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_error(client, status):
    await _fault(client, provider="both", mode="server_error", status=status)
    for response in (await client.get(CMC, headers=CMC_HEADERS), await client.get(CC)):
        assert response.status_code == status
        assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("mode", ["slow", "timeout"])
async def test_delays(client, mode):
    await _fault(client, provider="cryptocompare", mode=mode, delay=0.2, count=1)
    started = time.monotonic()
    response = await client.get(CC, params=CC_PARAMS)
    assert time.monotonic() - started >= 0.2
    assert response.json()["Type"] == 100
    started = time.monotonic()
    await client.get(CC, params=CC_PARAMS)
    assert time.monotonic() - started < 0.2


async def test_timeout_defaults_to_30_seconds(client):
    body = await _fault(client, provider="coinmarketcap", mode="timeout")
    assert body["faults"]["coinmarketcap"]["delay"] == 30.0


async def test_malformed(client):
    await _fault(client, provider="both", mode="malformed", count=2)
    for response in (
        await client.get(CMC, headers=CMC_HEADERS),
        await client.get(CC, params=CC_PARAMS),
    ):
        assert response.status_code == 200
        with pytest.raises(ValueError):
            response.json()


async def test_bad_fault_request(client):
    response = await client.post("/_emulator/faults", json={"provider": "x", "mode": "auth"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_fault"
    assert "provider must be" in response.json()["detail"]
