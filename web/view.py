"""The served top list: one immutable ``TopListView`` per generation, and the pure
``TopListBuilder`` that turns the top topic's messages into views.

The stream worker writes, per generation, the changed ``TopCoin`` rows (key = symbol),
tombstones for the symbols that left the list, then one ``TopListMeta`` (key ``_meta``)
whose ``symbols`` is the full list in rank order. Applying messages in offset order and
publishing a view at each ``TopListMeta`` therefore only ever shows complete, consistent
generations. A meta whose rows are not all of its generation (``schemas/generation.py``:
the snapshot pair every row and meta carries) is refused like an incomplete one: rows left
by a worker killed in the middle of a generation, or kept over a compaction or a gap,
never mix into a served list. The builder knows nothing about Kafka, so it is tested with
plain bytes.

Freshness: every entry keeps when its rank and its price were fetched from the provider
(``price_fetched_at`` is None when the entry has no usable price). The view's
``ranking_updated_at`` / ``prices_updated_at`` are the *oldest* of the meta's fetch time
and its entries' fetch times, so a row carried over from an older snapshot can never make
the list look fresher than it is (the stream worker writes them all from one snapshot, so
in practice they are the meta's times).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from topcoins.schemas.codec import decode
from topcoins.schemas.generation import foreign_rows, generation_of
from topcoins.schemas.prices import usable_price
from topcoins.schemas.records import TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY
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
    """Applies top-topic messages in offset order; ``apply`` returns a view at each meta.

    ``apply`` raises ``InvalidMessage`` for bytes that do not decode or break the key
    contract, and ``IncompleteGeneration`` for a meta whose rows are missing
    (``MixedGeneration`` when some are of another generation); in both cases
    the builder's state is unchanged apart from what the message legitimately set, so the
    caller logs, counts and carries on with the next message.
    """

    def __init__(self, first_generation: int = 1) -> None:
        self._rows: dict[str, TopCoin] = {}
        self._next_generation = first_generation

    @property
    def row_count(self) -> int:
        """How many symbols currently have a row (including ones not in the latest meta)."""
        return len(self._rows)

    def apply(self, key: bytes | str | None, value: bytes | None) -> TopListView | None:
        """Apply one message; return the new view when it closes a complete generation."""
        symbol = _key_text(key)
        if value is None:
            if symbol == META_KEY:
                raise InvalidMessage(f"tombstone for {META_KEY!r}: the meta key is never deleted")
            self._rows.pop(symbol, None)
            return None
        try:
            record = decode(value)
        except Exception as exc:  # any codec failure, e.g. a timestamp out of datetime's range
            raise InvalidMessage(f"key {symbol!r}: {exc!r}") from exc
        if isinstance(record, TopCoin):
            if record.symbol != symbol:
                raise InvalidMessage(
                    f"TopCoin for symbol {record.symbol!r} under key {symbol!r}; "
                    "rows must be keyed by their symbol"
                )
            self._rows[symbol] = record
            return None
        if isinstance(record, TopListMeta):
            if symbol != META_KEY:
                raise InvalidMessage(f"TopListMeta under key {symbol!r}; expected {META_KEY!r}")
            return self._close_generation(record)
        raise InvalidMessage(f"{type(record).__name__} does not belong on the top topic")

    def _close_generation(self, meta: TopListMeta) -> TopListView:
        if len(set(meta.symbols)) != len(meta.symbols):
            twice = sorted(s for s, n in Counter(meta.symbols).items() if n > 1)
            raise InvalidMessage(f"TopListMeta lists symbols more than once: {', '.join(twice)}")
        listed = {s: generation_of(self._rows[s]) for s in meta.symbols if s in self._rows}
        foreign = foreign_rows(meta, listed)
        if foreign:
            raise MixedGeneration(foreign, len(meta.symbols), generation_of(meta))
        view = TopListView.from_generation(self._next_generation, meta, self._rows)
        self._next_generation += 1
        return view


def _key_text(key: bytes | str | None) -> str:
    if key is None:
        raise InvalidMessage("message without a key; the top topic is keyed by symbol")
    if isinstance(key, str):
        return key
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessage(f"key {key!r} is not UTF-8") from exc


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
