import asyncio

import pytest

from topcoins.emulator.market import Market, UnknownAssetError, drift
from topcoins.emulator.universe import build_universe


@pytest.fixture
def market() -> Market:
    return Market(build_universe(42), seed=42)


def test_starts_from_the_universe(market):
    btc = market.universe.by_cmc_id[1]
    assert market.price(btc) == btc.price_usd
    assert market.prices()[1] == btc.price_usd
    assert market.ranking()[0].cc_symbol == "BTC"
    assert market.listings()[0].cmc_id == 1


def test_ranking_is_by_volume_and_includes_unlisted_assets(market):
    ranking = market.ranking()
    volumes = [market.volume(a) for a in ranking]
    assert volumes == sorted(volumes, reverse=True)
    assert "GAPS" in {a.cc_symbol for a in ranking}


def test_ticks_move_prices_and_reshuffle_the_top_200(market):
    before_prices = market.prices()
    before_top = [a.key for a in market.ranking()[:200]]
    for _ in range(60):
        market.tick()
    assert market.ticks == 60
    changed = sum(1 for cmc_id, p in market.prices().items() if p != before_prices[cmc_id])
    assert changed == len(before_prices)
    after_top = [a.key for a in market.ranking()[:200]]
    assert sum(1 for a, b in zip(before_top, after_top, strict=True) if a != b) > 50


def test_same_seed_same_walk():
    one, two = Market(build_universe(42), seed=3), Market(build_universe(42), seed=3)
    for _ in range(5):
        one.tick()
        two.tick()
    assert one.prices() == two.prices()


def test_stablecoins_barely_move(market):
    usdt = market.universe.by_cc_symbol["USDT"]
    for _ in range(300):
        market.tick()
    assert market.price(usdt) == pytest.approx(usdt.price_usd, rel=0.02)


def test_set_price_and_volume(market):
    market.set_price(11419, 3.5)
    assert market.prices()[11419] == 3.5
    assert market.price(market.universe.by_cc_symbol["TONCOIN"]) == 3.5
    market.set_volume("HOT*", 1e12)
    assert market.ranking()[0].cc_symbol == "HOT*"
    market.tick()
    assert market.ranking()[0].cc_symbol == "HOT*"  # the anchor moved too


def test_set_unknown_or_invalid(market):
    with pytest.raises(UnknownAssetError):
        market.set_price(999_999_999, 1.0)
    with pytest.raises(UnknownAssetError):
        market.set_volume("NOPE", 1.0)
    with pytest.raises(ValueError, match="greater than 0"):
        market.set_price(1, -1.0)
    with pytest.raises(ValueError, match="finite"):
        market.set_volume("BTC", float("nan"))


def test_snapshot_is_ground_truth(market):
    snapshot = market.snapshot()
    ranking = snapshot["ranking"]
    assert [r["position"] for r in ranking] == list(range(1, len(ranking) + 1))
    by_symbol = {r["symbol"]: r for r in ranking}
    assert by_symbol["TONCOIN"]["cmc_id"] == 11419
    assert by_symbol["GAPS"]["cmc_id"] is None
    assert by_symbol["EVMOS"]["has_raw"] is False
    assert snapshot["prices"]["11419"] == market.prices()[11419]
    assert snapshot["listings"][0]["cmc_rank"] == 1


async def test_drift_ticks_in_the_background_unless_paused(market):
    async with drift(market, 0.01):
        await asyncio.sleep(0.1)
        assert market.ticks > 0
        market.paused = True
        await asyncio.sleep(0.02)
        paused_at = market.ticks
        await asyncio.sleep(0.05)
        assert market.ticks == paused_at
    market.paused = False
    stopped_at = market.ticks
    await asyncio.sleep(0.05)
    assert market.ticks == stopped_at


async def test_zero_interval_never_ticks(market):
    async with drift(market, 0):
        await asyncio.sleep(0.02)
    assert market.ticks == 0
