"""The history reader's memory: joined lists by the snapshots they join, and settled moments.

A joined list is kept by (ranking id, pricing id), read from the ``snapshot_id`` message
header, so another moment served by the same two snapshots costs only the offset lookups.
A moment older than the reader's ``settle`` can no longer change: which join answers it is
remembered, so asking about it again costs nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from topcoins.domain import JoinResult
from topcoins.history.stats import HistoryStats
from topcoins.history.time_index import RecordRef

__all__ = ["JoinCache", "JoinKey", "LruCache", "Present", "join_key", "key_of_records"]

K = TypeVar("K")
V = TypeVar("V")

JoinKey = tuple[str, str | None]  # (ranking snapshot id, pricing snapshot id or None)
# What is kept of a joined list: a module-level function (it may run in a worker process).
Present = Callable[[JoinResult], Any]

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
    settled moment; hits are counted in ``stats``.

    A list is kept as its ``present``-ation (``decode.joined``: the ``JoinResult`` itself;
    the web keeps its encoded rows), and looked up with the same ``present``."""

    def __init__(self, size: int, stats: HistoryStats) -> None:
        self._joins: LruCache[tuple[Present, JoinKey], Any] = LruCache(size)
        self._moments: LruCache[tuple[Present, int], JoinKey] = LruCache(_MOMENT_CACHE_SIZE)
        self._stats = stats

    def get(self, present: Present, key: JoinKey) -> Any | None:
        """The kept list of the snapshots ``key`` names, if any."""
        value = self._joins.get((present, key))
        if value is not None:
            self._stats.join_cache_hits += 1
        return value

    def of_records(
        self, present: Present, ranking: RecordRef | None, prices: RecordRef | None
    ) -> Any | None:
        """The kept list of two raw records, named by their ``snapshot_id`` headers."""
        ranking_id = ranking.snapshot_id if ranking is not None else None
        prices_id = prices.snapshot_id if prices is not None else None
        if ranking_id is None or (prices_id is None and prices is not None):
            return None
        return self.get(present, (ranking_id, prices_id))

    def put(self, present: Present, key: JoinKey, value: V) -> V:
        """Keep ``value``, the list of the snapshots ``key`` names."""
        return self._joins.put((present, key), value)

    def at(self, present: Present, at_ms: int) -> Any | None:
        """The kept list that answers the settled moment ``at_ms``, if any."""
        key = self._moments.get((present, at_ms))
        return self.get(present, key) if key is not None else None

    def remember(self, present: Present, at_ms: int, key: JoinKey) -> None:
        """Remember that the snapshots ``key`` names answer ``at_ms`` (settled moments)."""
        self._moments.put((present, at_ms), key)


def key_of_records(ranking: RecordRef | None, prices: RecordRef | None) -> JoinKey | None:
    """The ids two raw records' ``snapshot_id`` headers give (None: a header is missing)."""
    ranking_id = ranking.snapshot_id if ranking is not None else None
    prices_id = prices.snapshot_id if prices is not None else None
    if ranking_id is None or (prices_id is None and prices is not None):
        return None
    return (ranking_id, prices_id)


def join_key(result: JoinResult) -> JoinKey:
    """The ids of the snapshots ``result`` joins."""
    return (result.meta.ranking_snapshot_id, result.meta.pricing_snapshot_id)
