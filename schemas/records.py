"""Typed records that travel between components.

Each record type has the fields of the published schema version ``versions.CURRENT`` binds
it to, in the same order; ``versions.current_schema`` refuses one that does not.

Timestamps are timezone-aware UTC ``datetime`` objects (``timestamp-millis`` on the wire).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "PriceQuote",
    "PriceSnapshot",
    "ProducerStatus",
    "RankedAsset",
    "RankingSnapshot",
    "Snapshot",
    "TopCoin",
    "TopListMeta",
    "utc_millis",
]


@dataclass(frozen=True)
class Snapshot:
    """The fields every provider poll starts with: its id, and when the provider answered
    (the time that orders the raw snapshots for a replay)."""

    snapshot_id: str
    fetched_at: datetime


@dataclass(frozen=True)
class PriceQuote:
    """One CoinMarketCap listing entry, reduced to what topcoins uses."""

    cmc_id: int
    symbol: str
    name: str
    slug: str
    cmc_rank: int | None
    price_usd: float | None
    volume_24h_usd: float | None
    last_updated: datetime | None
    market_cap_usd: float | None = None  # quote.USD.market_cap (v2)
    percent_change_24h: float | None = None  # quote.USD.percent_change_24h (v2)


@dataclass(frozen=True)
class PriceSnapshot(Snapshot):
    """Every listing CoinMarketCap returned in one poll (all pages), as fetched."""

    total_count: int | None
    quotes: tuple[PriceQuote, ...]


@dataclass(frozen=True)
class RankedAsset:
    """One CryptoCompare toplist entry; ``position`` is its 1-based place in the answer."""

    position: int
    symbol: str
    name: str
    cc_id: str | None
    volume_24h_usd: float | None


@dataclass(frozen=True)
class RankingSnapshot(Snapshot):
    """The CryptoCompare ranking by 24h total volume from one poll (all pages, in order)."""

    depth: int
    provider_total: int | None
    assets: tuple[RankedAsset, ...]


@dataclass(frozen=True)
class TopListMeta:
    """Closes one generation of the joined list: the ordered symbols and where they came from."""

    symbols: tuple[str, ...]
    ranking_snapshot_id: str
    ranking_fetched_at: datetime
    pricing_snapshot_id: str | None
    prices_fetched_at: datetime | None
    provider_total: int | None
    depth: int
    unmatched: int


@dataclass(frozen=True)
class TopCoin:
    """One row of the joined top list, keyed by the CryptoCompare ``symbol``."""

    rank: int
    symbol: str
    name: str
    cmc_id: int | None
    price_usd: float | None
    match_rule: str
    volume_24h_usd: float | None
    rank_fetched_at: datetime
    price_fetched_at: datetime | None
    ranking_snapshot_id: str
    pricing_snapshot_id: str | None
    market_cap_usd: float | None = None  # from the matched PriceQuote (v2)
    percent_change_24h: float | None = None  # from the matched PriceQuote (v2)


@dataclass(frozen=True)
class ProducerStatus:
    """A producer's health after its latest poll (the status topic, keyed by provider)."""

    provider: str
    component: str
    poll_interval_seconds: float
    last_attempt_at: datetime
    last_success_at: datetime | None
    last_snapshot_id: str | None
    last_error: str | None
    last_error_kind: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    credits_paid_until: datetime | None = None  # the pricing producer's credit ledger (v2)


def utc_millis(moment: datetime) -> datetime:
    """``moment`` in UTC, truncated to whole milliseconds (the wire precision)."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
