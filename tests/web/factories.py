"""Factories for the web tests: real-looking top-topic rows and views built the real way."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

from starlette.exceptions import StarletteDeprecationWarning

from topcoins.schemas.codec import encode
from topcoins.schemas.records import TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY
from topcoins.web.version import BuildInfo
from topcoins.web.view import TopListBuilder, TopListView

with warnings.catch_warnings():
    # starlette's TestClient prefers the httpx2 package; httpx works the same for our tests.
    warnings.filterwarnings(
        "ignore", "Using `httpx` with `starlette.testclient`", StarletteDeprecationWarning
    )
    from starlette.testclient import TestClient

__all__ = [
    "BUILD",
    "PRICED_AT",
    "RANKED_AT",
    "SAMPLE_ROWS",
    "TestClient",
    "coin",
    "meta",
    "view_of",
]

RANKED_AT = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
PRICED_AT = RANKED_AT - timedelta(seconds=42, milliseconds=500)
BUILD = BuildInfo(version="1.2.3", git_commit="a" * 40, build_time="2024-05-01T00:00:00Z")


def coin(
    symbol: str,
    name: str,
    cmc_id: int | None,
    price_usd: float | None,
    *,
    rank: int = 1,
    match_rule: str | None = None,
    volume_24h_usd: float | None = 1_000_000.0,
) -> TopCoin:
    """A TopCoin row as the stream worker writes it."""
    matched = cmc_id is not None
    return TopCoin(
        rank=rank,
        symbol=symbol,
        name=name,
        cmc_id=cmc_id,
        price_usd=price_usd,
        match_rule=match_rule or ("symbol" if matched else "unmatched"),
        volume_24h_usd=volume_24h_usd,
        rank_fetched_at=RANKED_AT,
        price_fetched_at=PRICED_AT if matched else None,
        ranking_snapshot_id="rank-0001",
        pricing_snapshot_id="price-0001" if matched else None,
    )


def meta(
    symbols: list[str], *, provider_total: int | None = 5012, unmatched: int = 0
) -> TopListMeta:
    """The TopListMeta that closes a generation of ``symbols``."""
    return TopListMeta(
        symbols=tuple(symbols),
        ranking_snapshot_id="rank-0001",
        ranking_fetched_at=RANKED_AT,
        pricing_snapshot_id="price-0001",
        prices_fetched_at=PRICED_AT,
        provider_total=provider_total,
        depth=200,
        unmatched=unmatched,
    )


# The sample generation: real-looking top assets, one without a price, one with a name
# that needs quoting in CSV.
SAMPLE_ROWS = [
    coin("BTC", "Bitcoin", 1, 67012.34, match_rule="alias", volume_24h_usd=35_210_000_000.5),
    coin("ETH", "Ethereum", 1027, 3120.5, volume_24h_usd=15_900_000_000.0),
    coin("USDT", "Tether", 825, 1.0002, volume_24h_usd=48_000_000_000.0),
    coin("WIF", 'dogwifhat, "the hat"', None, None, volume_24h_usd=None),
    coin("PEPE", "Pepe", 24478, 0.00001234, volume_24h_usd=820_000_000.25),
]


def view_of(rows: list[TopCoin], generation_meta: TopListMeta | None = None) -> TopListView:
    """Build a view the way the replica does: encoded rows, then the meta, through the builder."""
    builder = TopListBuilder()
    for row in rows:
        builder.apply(row.symbol.encode(), encode(row))
    closing = generation_meta or meta(
        [row.symbol for row in rows], unmatched=sum(1 for r in rows if r.cmc_id is None)
    )
    view = builder.apply(META_KEY.encode(), encode(closing))
    assert view is not None
    return view
