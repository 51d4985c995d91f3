"""The history reader's memory: joined lists by the snapshots they join, and settled moments.

A joined list is kept by (ranking id, pricing id), read from the ``snapshot_id`` message
header, so another moment served by the same two snapshots costs only the offset lookups.
A moment older than the reader's ``settle`` can no longer change: which join answers it is
remembered, so asking about it again costs nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

from topcoins.domain import JoinResult
from topcoins.history.raw_topics import RawRecord, snapshot_id
from topcoins.history.stats import HistoryStats

__all__ = ["JoinCache", "LruCache"]

K = TypeVar("K")
V = TypeVar("V")

JoinKey = tuple[str, str | None]  # (ranking snapshot id, pricing snapshot id or None)

_MOMENT_CACHE_SIZE = 1024


class LruCache(Generic[K, V]):
    """At most ``size`` entries; the least recently used one goes first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def __getitem__(self, key: K) -> V:
        """The entry for ``key``, now the most recently used."""
        self._entries.move_to_end(key)
        return self._entries[key]

    def get(self, key: K) -> V | None:
        """The entry for ``key`` (now the most recently used), else None."""
        return self[key] if key in self._entries else None

    def put(self, key: K, value: V) -> V:
        """Keep ``value`` for ``key``, dropping the least recently used beyond ``size``."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value


class JoinCache:
    """Joined lists by the ids of the snapshots they join, and which one answers a
    settled moment; hits are counted in ``stats``."""

    def __init__(self, size: int, stats: HistoryStats) -> None:
        self._joins: LruCache[JoinKey, JoinResult] = LruCache(size)
        self._moments: LruCache[int, JoinKey] = LruCache(_MOMENT_CACHE_SIZE)
        self._stats = stats

    def get(self, key: JoinKey) -> JoinResult | None:
        """The join of the snapshots ``key`` names, if kept."""
        result = self._joins.get(key)
        if result is not None:
            self._stats.join_cache_hits += 1
        return result

    def of_records(self, ranking: RawRecord | None, prices: RawRecord | None) -> JoinResult | None:
        """The kept join of two raw records, named by their ``snapshot_id`` headers."""
        ranking_id, prices_id = snapshot_id(ranking), snapshot_id(prices)
        if ranking_id is None or (prices_id is None and prices is not None):
            return None
        return self.get((ranking_id, prices_id))

    def put(self, result: JoinResult) -> JoinResult:
        """Keep ``result`` under the ids of the snapshots it joins."""
        meta = result.meta
        return self._joins.put((meta.ranking_snapshot_id, meta.pricing_snapshot_id), result)

    def at(self, at_ms: int) -> JoinResult | None:
        """The kept join that answers the settled moment ``at_ms``, if any."""
        key = self._moments.get(at_ms)
        return self.get(key) if key is not None else None

    def remember(self, at_ms: int, result: JoinResult) -> None:
        """Remember that ``result`` answers ``at_ms`` (only for settled moments)."""
        self._moments.put(at_ms, (result.meta.ranking_snapshot_id, result.meta.pricing_snapshot_id))
