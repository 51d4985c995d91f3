import json

import pytest

from topcoins.emulator.market import Market
from topcoins.emulator.responses import _full, _short, cc_toplist, cmc_listings, iso
from topcoins.emulator.universe import build_universe

NOW = 1_700_000_000.0


@pytest.fixture
def market() -> Market:
    return Market(build_universe(42), seed=42, unix_now=lambda: NOW)


def _listings(market, **overrides):
    params = {"start": 1, "limit": 5000, "sort": "market_cap", "descending": True, "now": NOW}
    return cmc_listings(market, **params | overrides)


def test_cmc_shape_matches_the_real_2022_body(market, fixture_json):
    real = fixture_json("cmc_listings_2022-12-16.json")
    body = _listings(market)
    assert body.keys() == real.keys()
    assert list(body["status"]) == list(real["status"])
    for item in body["data"]:
        assert list(item) == list(real["data"][0])
        assert list(item["quote"]["USD"]) == list(real["data"][0]["quote"]["USD"])
    json.dumps(body, allow_nan=False)


def test_cmc_status(market):
    body = _listings(market, limit=401)
    assert body["status"]["credit_count"] == 3
    assert body["status"]["total_count"] == 700
    assert body["status"]["timestamp"] == iso(NOW) == "2023-11-14T22:13:20.000Z"
    assert _listings(market, limit=200)["status"]["credit_count"] == 1


def test_cmc_order_follows_sort_not_rank(market):
    by_volume = _listings(market, sort="volume_24h", limit=50)["data"]
    volumes = [item["quote"]["USD"]["volume_24h"] for item in by_volume]
    assert volumes == sorted(volumes, reverse=True)
    ranks = [item["cmc_rank"] for item in by_volume]
    assert ranks != sorted(ranks)
    ascending = _listings(market, sort="market_cap", descending=False)["data"]
    assert [i["cmc_rank"] for i in ascending] == list(range(700, 0, -1))


def test_cc_shape_matches_the_real_body(market, fixture_json):
    real = fixture_json("cc_mktcapfull_2022-09-21_page0.json")
    real_item = real["Data"][0]
    body = cc_toplist(market, page=0, limit=500, now=NOW)
    assert list(body) == list(real)
    assert body["MetaData"] == {"Count": 500}
    coin_info_keys = {k for item in real["Data"] for k in item["CoinInfo"]}
    coin_info_keys |= {"AssetLaunchDate", "MaxSupply"}
    for item in body["Data"]:
        assert set(item["CoinInfo"]) <= coin_info_keys
        if "RAW" in item:
            assert list(item["RAW"]["USD"]) == list(real_item["RAW"]["USD"])
            assert list(item["DISPLAY"]["USD"]) == list(real_item["DISPLAY"]["USD"])
            assert all(isinstance(v, str) for v in item["DISPLAY"]["USD"].values())
    json.dumps(body, allow_nan=False)


def test_cc_raw_carries_the_market_values(market):
    body = cc_toplist(market, page=0, limit=10, now=NOW)
    btc = body["Data"][0]
    raw = btc["RAW"]["USD"]
    asset = market.universe.by_cc_symbol["BTC"]
    assert raw["PRICE"] == market.price(asset)
    assert raw["TOTALVOLUME24HTO"] == market.volume(asset)
    assert raw["LASTUPDATE"] == int(NOW)
    assert btc["DISPLAY"]["USD"]["FROMSYMBOL"] == "Ƀ"


def test_cc_items_without_raw(market):
    body = cc_toplist(market, page=0, limit=500, now=NOW)
    bare = [i["CoinInfo"]["Name"] for i in body["Data"] if "RAW" not in i]
    assert sorted(bare) == ["CUSDC", "EVMOS"]
    assert all("DISPLAY" not in i for i in body["Data"] if "RAW" not in i)


@pytest.mark.parametrize(
    ("value", "significant", "text"),
    [
        (19541.43, 4, "19,541.4"),
        (1361.27, 4, "1,361.27"),
        (0.06086, 4, "0.06086"),
        (0.023, 4, "0.02300"),
        (0.0020899, 2, "0.0021"),
        (0, 2, "0.0"),
    ],
)
def test_cc_long_numbers(value, significant, text):
    assert _full(value, significant) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(14414703204.2, "14.41 B"), (628817344.1, "628.82 M"), (739140.57, "739.14 K")],
)
def test_cc_short_numbers(value, text):
    assert _short(value) == text
