"""``TimeIndex``: what a history reader has learned of one raw topic's offsets and times.

Every record the locator fetches is remembered by its offset: its timestamp and
``snapshot_id`` header (a few dozen bytes, never its value) and, when a fetch showed it,
the offset of the record that follows it in the log (offsets ``n`` and ``n + 1`` always
follow each other). A moment that falls between two
records known to be neighbours is then found without asking the broker: a raw topic's
records never change, and retention only deletes from the start (``forget_before``).

The index answers only while the timestamps it has seen do not decrease with the offset
(one producer per topic, publishing in fetch order: what the locator's searches assume
too). The first pair out of order switches it off for good, and every moment then goes to
the broker. It keeps at most ``max_entries`` records; past that it starts over.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from topcoins.history.raw_topics import RawRecord, snapshot_id

__all__ = ["MAX_INDEXED_RECORDS", "RecordRef", "TimeIndex"]

# About 7 days of one snapshot every 6 seconds; some 100 bytes each.
MAX_INDEXED_RECORDS = 100_000


@dataclass(frozen=True, slots=True)
class RecordRef:
    """One raw record without its value: where it is, when it was fetched, what it holds."""

    offset: int
    timestamp: int  # Kafka timestamp: the snapshot's fetched_at, in ms
    snapshot_id: str | None  # its ``snapshot_id`` header

    @classmethod
    def of(cls, record: RawRecord) -> RecordRef:
        """The reference to a fetched record."""
        return cls(record.offset, record.timestamp, snapshot_id(record))


class TimeIndex:
    """The records of one partition seen so far, by offset, and which are neighbours."""

    def __init__(self, max_entries: int = MAX_INDEXED_RECORDS) -> None:
        self.max_entries = max_entries
        self.ordered = True  # False once two records' timestamps were out of order
        self._offsets: list[int] = []  # ascending
        self._timestamps: list[int] = []  # the timestamp of each offset above
        self._refs: dict[int, RecordRef] = {}
        self._next: dict[int, int] = {}  # offset -> offset of the record after it

    def __len__(self) -> int:
        return len(self._offsets)

    def learn(self, fetched_from: int, records: Sequence[RawRecord]) -> None:
        """Remember ``records``: what one fetch from offset ``fetched_from`` returned (the
        first records at or after it, in log order, with nothing left out between)."""
        if not self.ordered or not records:
            return
        if len(self._offsets) + len(records) > self.max_entries:
            self.clear()
        if fetched_from - 1 in self._refs:
            self._next[fetched_from - 1] = records[0].offset
        for before, after in pairwise(records):
            self._next[before.offset] = after.offset
        for record in records:
            if not self._add(RecordRef.of(record)):
                return

    def find(self, at_ms: int) -> RecordRef | None:
        """The last record with a timestamp <= ``at_ms``, when the index knows it: it and
        the record after it are both known, and known to be neighbours. None: ask the
        broker."""
        if not self.ordered:
            return None
        after = bisect_right(self._timestamps, at_ms)
        if after == 0 or after == len(self._offsets):
            return None
        offset, following = self._offsets[after - 1], self._offsets[after]
        if following != offset + 1 and self._next.get(offset) != following:
            return None
        return self._refs[offset]

    def forget_before(self, begin: int) -> None:
        """Forget the records before ``begin`` (the log start: retention deleted them)."""
        cut = bisect_left(self._offsets, begin)
        if cut == 0:
            return
        for offset in self._offsets[:cut]:
            del self._refs[offset]
            self._next.pop(offset, None)
        del self._offsets[:cut]
        del self._timestamps[:cut]

    def clear(self) -> None:
        """Forget everything (the index starts over; it stays on or off as it was)."""
        self._offsets, self._timestamps = [], []
        self._refs, self._next = {}, {}

    def _add(self, ref: RecordRef) -> bool:
        """Index ``ref``; False when it was out of order (the index is now off)."""
        offset = ref.offset
        if offset in self._refs:
            return True
        at = bisect_left(self._offsets, offset)
        timestamps = self._timestamps
        if (at > 0 and timestamps[at - 1] > ref.timestamp) or (
            at < len(timestamps) and timestamps[at] < ref.timestamp
        ):
            self.ordered = False  # the searches by time would be wrong: never answer again
            self.clear()
            return False
        self._offsets.insert(at, offset)
        timestamps.insert(at, ref.timestamp)
        self._refs[offset] = ref
        return True
