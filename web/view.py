"""The served top list: one immutable ``TopListView`` per generation, and the pure
``TopListBuilder`` that turns the top topic's messages into views.

The builder folds the messages with ``topcoins.top_list.TopListFold`` (the rule every
reader of the top topic shares) and publishes a view at each ``TopListMeta`` whose rows
are all there and all of its generation, so only complete, consistent generations are
ever served: a meta with a missing row is refused, like one that mixes generations. The
builder knows nothing about Kafka, so it is tested with plain bytes.

Freshness: every entry keeps when its rank and its price were fetched from the provider
(``price_fetched_at`` is None when the entry has no usable price). The view's
``ranking_updated_at`` / ``prices_updated_at`` are the *oldest* of the meta's fetch time
and its entries' fetch times, so a row carried over from an older snapshot can never make
the list look fresher than it is (the stream worker writes them all from one snapshot, so
in practice they are the meta's times).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from topcoins import top_list
from topcoins.domain import JoinResult
from topcoins.schemas.prices import usable_price
from topcoins.schemas.records import TopCoin, TopListMeta
from topcoins.top_list import TopListFold
from topcoins.topic_reader import UnusableMessage
from topcoins.web.errors import IncompleteGeneration, InvalidMessage, MixedGeneration

__all__ = ["TopListBuilder", "TopListEntry", "TopListView"]


@dataclass(frozen=True, slots=True)
class TopListEntry:
    """One ranked asset as served; ``rank`` is its 1-based place in the generation."""

    rank: int
    symbol: str
    name: str
    cmc_id: int | None
    price_usd: float | None
    volume_24h_usd: float | None
    match_rule: str
    rank_fetched_at: datetime
    price_fetched_at: datetime | None
    market_cap_usd: float | None = None
    percent_change_24h: float | None = None


@dataclass(frozen=True, slots=True)
class TopListView:
    """One complete generation of the top list, in rank order; never changes once built."""

    generation: int
    entries: tuple[TopListEntry, ...]
    ranking_updated_at: datetime
    prices_updated_at: datetime | None
    provider_total: int | None
    depth: int
    unmatched: int
    ranking_snapshot_id: str
    pricing_snapshot_id: str | None

    @property
    def total_ranked(self) -> int:
        """How many assets this generation ranks (``len(meta.symbols)``)."""
        return len(self.entries)

    @classmethod
    def from_generation(
        cls, generation: int, meta: TopListMeta, rows: Mapping[str, TopCoin]
    ) -> TopListView:
        """Join ``meta.symbols`` with their rows; ``IncompleteGeneration`` if any is missing."""
        missing = tuple(symbol for symbol in meta.symbols if symbol not in rows)
        if missing:
            raise IncompleteGeneration(missing, len(meta.symbols))
        entries = tuple(
            _entry(rank, rows[symbol]) for rank, symbol in enumerate(meta.symbols, start=1)
        )
        return cls(
            generation=generation,
            entries=entries,
            ranking_updated_at=min(
                (meta.ranking_fetched_at, *(entry.rank_fetched_at for entry in entries))
            ),
            prices_updated_at=_oldest(
                meta.prices_fetched_at, *(entry.price_fetched_at for entry in entries)
            ),
            provider_total=meta.provider_total,
            depth=meta.depth,
            unmatched=meta.unmatched,
            ranking_snapshot_id=meta.ranking_snapshot_id,
            pricing_snapshot_id=meta.pricing_snapshot_id,
        )


class TopListBuilder:
    """Applies top-topic messages in offset order (``topcoins.top_list``); ``apply``
    returns a view at each meta.

    ``apply`` raises ``InvalidMessage`` for bytes that do not decode or break the key
    contract, and ``IncompleteGeneration`` for a meta whose rows are missing
    (``MixedGeneration`` when some are of another generation); in both cases
    the builder's state is unchanged apart from what the message legitimately set, so the
    caller logs, counts and carries on with the next message.
    """

    def __init__(self, first_generation: int = 1) -> None:
        self._fold = TopListFold()
        self._next_generation = first_generation

    @property
    def row_count(self) -> int:
        """How many symbols currently have a row (including ones not in the latest meta)."""
        return self._fold.row_count

    def apply(self, key: bytes | str | None, value: bytes | None) -> TopListView | None:
        """Apply one message; return the new view when it closes a complete generation."""
        try:
            closed = self._fold.apply(key, value)
        except top_list.MixedGeneration as exc:
            raise MixedGeneration(exc.foreign, exc.total, exc.generation) from exc
        except UnusableMessage as exc:
            raise InvalidMessage(str(exc)) from exc
        if closed is None:
            return None
        view = TopListView.from_generation(self._next_generation, closed.meta, closed.rows)
        self._next_generation += 1
        return view


def _entry(rank: int, row: TopCoin) -> TopListEntry:
    price = usable_price(row.price_usd)
    return TopListEntry(
        rank=rank,
        symbol=row.symbol,
        name=row.name,
        cmc_id=row.cmc_id,
        price_usd=price,
        volume_24h_usd=_known_volume(row.volume_24h_usd),
        match_rule=row.match_rule,
        rank_fetched_at=row.rank_fetched_at,
        price_fetched_at=None if price is None else row.price_fetched_at,
        market_cap_usd=_known_volume(row.market_cap_usd),
        percent_change_24h=_known_change(row.percent_change_24h),
    )


def _oldest(*moments: datetime | None) -> datetime | None:
    """The earliest of the given times (None ones ignored), or None when all are None."""
    known = [moment for moment in moments if moment is not None]
    return min(known) if known else None


def _known_volume(volume: float | None) -> float | None:
    """A volume or market cap: finite and not negative, else unknown."""
    if volume is None or not math.isfinite(volume) or volume < 0:
        return None
    return volume


def _known_change(percent: float | None) -> float | None:
    """A price change in percent: finite and at least -100, else unknown."""
    if percent is None or not math.isfinite(percent) or percent < -100:
        return None
    return percent


def view_of_join(result: JoinResult) -> TopListView:
    """The join's rows and meta as a view, built the way the replica builds generations
    (generation 0: it is not one of the top topic's)."""
    return TopListView.from_generation(0, result.meta, {row.symbol: row for row in result.rows})
