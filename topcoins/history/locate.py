"""Finding a moment in a raw topic: its last record with a timestamp at or before a time.

``offsets_for_times`` (Kafka's ListOffsets by timestamp) names the first offset later than
the moment; the record just before it is the candidate. Every answer is checked against the
records it points at: Tansu (the dev broker) answers offset 0 whatever the time, and a
wrong answer switches the locator to a binary search over record timestamps (a few
fetches). From the candidate it reads forward until a record is later than the moment or
the fetch high watermark is reached (``topcoins.history.fetch``). Both searches assume that
a raw topic's timestamps do not decrease with the offset (one producer per topic,
publishing in fetch order).

Every record fetched goes into the topic's ``TimeIndex``, so a moment between two records
already seen costs no broker round trip at all; the log start is asked again at most every
``BEGIN_REFRESH_S``. What ``find`` returns is a ``RecordRef`` (no value); ``raw`` gives the
record itself, from the last records fetched or from one more fetch.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aiokafka import TopicPartition
from aiokafka.errors import UnsupportedVersionError

from topcoins.history.connection import Connection
from topcoins.history.errors import HistoryReadError
from topcoins.history.raw_topics import RawRecord, RawTopic, time_of
from topcoins.history.stats import HistoryStats
from topcoins.history.time_index import RecordRef, TimeIndex

__all__ = ["BEGIN_REFRESH_S", "Found", "Locator"]

logger = logging.getLogger(__name__)

# How long a partition's log start is trusted before it is asked again (retention deletes
# whole segments, days old: a few seconds late changes nothing).
BEGIN_REFRESH_S = 10.0
# Raw records kept from the last fetches, for ``raw`` (a price snapshot is ~100 kB).
_RAW_KEPT = 8


@dataclass(frozen=True)
class Found:
    """The candidate record of one raw topic at a moment, and what the partition retains."""

    record: RecordRef | None
    begin: int  # log start offset: > 0 once retention deleted something


class Locator:
    """Finds records by time on ``connection``; counts binary searches and index hits in
    ``stats``. ``monotonic`` (seconds) times the log start's refresh."""

    def __init__(
        self,
        connection: Connection,
        stats: HistoryStats,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connection = connection
        self._stats = stats
        self._monotonic = monotonic
        # None until the broker has answered offsets_for_times once; False once it lied.
        self._timestamp_lookup_ok: bool | None = None
        self._indexes: dict[TopicPartition, TimeIndex] = {}
        self._begins: dict[TopicPartition, tuple[int, float]] = {}  # (offset, asked at)
        self._raw: OrderedDict[tuple[TopicPartition, int], RawRecord] = OrderedDict()

    async def find(self, topic: RawTopic, at_ms: int) -> Found:
        """The last record of ``topic`` with a timestamp <= ``at_ms``."""
        connection = self._connection
        tp = await connection.partition(topic)
        begin = await self._begin(tp)
        known = self._index(tp).find(at_ms)
        if known is not None and known.offset >= begin:
            self._stats.index_hits += 1
            return Found(known, begin)
        reported_end = (await connection.consumer.end_offsets([tp]))[tp]
        if reported_end <= begin:  # empty (Tansu's under-report never reaches begin)
            return Found(None, begin)
        hint, from_broker = await self._first_after(tp, at_ms, begin, reported_end)
        records = await self._fetch(tp, max(hint - 1, begin))
        if from_broker and _contradicts(records, hint, at_ms):
            logger.info(
                "the broker answered offsets_for_times wrongly; searching by timestamps",
                extra={"topic": tp.topic, "answer": hint},
            )
            self._timestamp_lookup_ok = False
            hint, _ = await self._first_after(tp, at_ms, begin, reported_end)
            records = await self._fetch(tp, max(hint - 1, begin))
        elif from_broker:
            self._timestamp_lookup_ok = True
        found = await self._read_forward(tp, records, at_ms)
        return Found(RecordRef.of(found) if found is not None else None, begin)

    async def raw(self, topic: RawTopic, ref: RecordRef) -> RawRecord:
        """The record ``ref`` names, value included; ``HistoryReadError`` when the topic no
        longer holds it (retention deleted it meanwhile: the next question asks the broker
        afresh)."""
        tp = topic.tp
        kept = self._raw.get((tp, ref.offset))
        if kept is not None:
            return kept
        records = await self._fetch(tp, ref.offset)
        if not records or records[0].offset != ref.offset:
            self._index(tp).clear()
            self._begins.pop(tp, None)
            raise HistoryReadError(f"{tp.topic} no longer holds offset {ref.offset}; retry")
        return records[0]

    async def previous(self, topic: RawTopic, record: RecordRef, begin: int) -> RecordRef | None:
        """The record before ``record`` (skipping compacted gaps), None before ``begin``."""
        offset = record.offset - 1
        while offset >= begin:
            records = await self._fetch(topic.tp, offset)
            if records and records[0].offset == offset:
                return RecordRef.of(records[0])
            offset -= 1
        return None

    async def oldest(self, topic: RawTopic) -> datetime | None:
        """``fetched_at`` (the timestamp) of the oldest message ``topic`` retains."""
        tp = await self._connection.partition(topic)
        records = await self._fetch(tp, await self._begin(tp, fresh=True))
        return time_of(records[0]) if records else None

    async def earliest(self, ranks: RawTopic, prices: RawTopic) -> datetime | None:
        """The earliest moment a list can be given for: the oldest retained ranking, or
        the oldest retained price snapshot if retention already deleted older ones."""
        oldest_ranking = await self.oldest(ranks)
        if oldest_ranking is None:
            return None
        if await self._begin(await self._connection.partition(prices), fresh=True) == 0:
            return oldest_ranking
        oldest_prices = await self.oldest(prices)
        return max(oldest_ranking, oldest_prices) if oldest_prices else oldest_ranking

    async def _first_after(
        self, tp: TopicPartition, at_ms: int, begin: int, end: int
    ) -> tuple[int, bool]:
        """First offset whose timestamp is > ``at_ms`` (``end`` if none), and whether the
        broker said so (True) or a binary search found it (False)."""
        if self._timestamp_lookup_ok is not False:
            try:
                answer = (await self._connection.consumer.offsets_for_times({tp: at_ms + 1})).get(
                    tp
                )
            except UnsupportedVersionError:
                self._timestamp_lookup_ok = False
            else:
                return (answer.offset if answer is not None else end), True
        self._stats.timestamp_searches += 1
        lo, hi = begin, end
        while lo < hi:
            mid = (lo + hi) // 2
            records = await self._fetch(tp, mid)
            later = next((i for i, r in enumerate(records) if r.timestamp > at_ms), None)
            if not records or later == 0:
                hi = mid
            elif later is None:
                lo = records[-1].offset + 1
            else:
                return records[later].offset, False
        return lo, False

    async def _read_forward(
        self, tp: TopicPartition, records: list[RawRecord], at_ms: int
    ) -> RawRecord | None:
        """From the first fetched record on: the last record with a timestamp <= ``at_ms``."""
        best = None
        while records:
            for record in records:
                if record.timestamp > at_ms:
                    return best
                best = record
            following = records[-1].offset + 1
            highwater = self._connection.consumer.highwater(tp)
            if highwater is not None and following >= highwater:
                return best
            records = await self._fetch(tp, following)
        return best

    async def _fetch(self, tp: TopicPartition, offset: int) -> list[RawRecord]:
        """One fetch from ``offset``, learned by the index and kept for ``raw``."""
        records = await self._connection.fetch(tp, offset)
        self._index(tp).learn(offset, records)
        for record in records:
            self._raw[(tp, record.offset)] = record
            self._raw.move_to_end((tp, record.offset))
        while len(self._raw) > _RAW_KEPT:
            self._raw.popitem(last=False)
        return records

    async def _begin(self, tp: TopicPartition, *, fresh: bool = False) -> int:
        """The partition's log start, asked again when older than ``BEGIN_REFRESH_S`` (or
        when ``fresh``); the index forgets what retention deleted."""
        now = self._monotonic()
        known = self._begins.get(tp)
        if known is not None and not fresh and now - known[1] < BEGIN_REFRESH_S:
            return known[0]
        begin = await self._connection.begin(tp)
        self._begins[tp] = (begin, now)
        self._index(tp).forget_before(begin)
        return begin

    def _index(self, tp: TopicPartition) -> TimeIndex:
        index = self._indexes.get(tp)
        if index is None:
            index = self._indexes[tp] = TimeIndex()
        return index


def _contradicts(records: list[RawRecord], hint: int, at_ms: int) -> bool:
    """True when the records show that ``hint`` is not the first offset later than at_ms."""
    by_offset = {record.offset: record for record in records}
    before, after = by_offset.get(hint - 1), by_offset.get(hint)
    return (before is not None and before.timestamp > at_ms) or (
        after is not None and after.timestamp <= at_ms
    )
