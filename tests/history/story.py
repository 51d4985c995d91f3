"""Snapshots for the history tests: numbered rankings and price snapshots of a few coins."""

from __future__ import annotations

from datetime import datetime

from tests.streams.snapshots import prices_of, quote, ranked, ranking_of
from topcoins.schemas.records import PriceSnapshot, RankingSnapshot

NAMES = {"BTC": "Bitcoin", "ETH": "Ethereum", "USDT": "Tether", "XRP": "XRP"}


def ranking(n: int, at: datetime, *symbols: str) -> RankingSnapshot:
    """``ranking-<n>``, fetched at ``at``, ranking ``symbols`` in this order."""
    assets = [ranked(i, s, NAMES[s], cc_id=str(i)) for i, s in enumerate(symbols, start=1)]
    return ranking_of(*assets, snapshot_id=f"ranking-{n}", fetched_at=at)


def prices(n: int, at: datetime, btc: float) -> PriceSnapshot:
    """``prices-<n>``, fetched at ``at``: BTC at ``btc``, ETH at a twentieth, USDT at 1."""
    return prices_of(
        quote(1, "BTC", "Bitcoin", rank=1, price=btc),
        quote(1027, "ETH", "Ethereum", rank=2, price=btc / 20),
        quote(825, "USDT", "Tether", rank=3, price=1.0),
        snapshot_id=f"prices-{n}",
        fetched_at=at,
    )
