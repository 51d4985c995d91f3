"""The joined list as it was at a moment, and deterministic replays, from the raw topics.

The raw snapshot topics (``<prefix>.ranks.v1`` and ``<prefix>.prices.v1``, one partition
each, 7-day retention) hold every snapshot the producers fetched; each message's Kafka
timestamp is the snapshot's ``fetched_at``. From them a ``HistoryReader`` answers:

* ``snapshots_at(at)``: the latest ranking and the latest price snapshot with
  ``fetched_at <= at``; ``top_list_at(at)`` joins them with ``join_top_list``, exactly as
  the worker would have.
* ``replay(since, until)``: every snapshot from ``since`` (or the beginning) to ``until``
  (or the current end), folded into fresh state in a fixed order: by ``fetched_at``, then
  topic, partition and offset. A snapshot whose id is the one in force is skipped (a
  retried publish), as the worker does; in this order none is ever older than the one in
  force. The result is the join of the last ranking and the last price snapshot: the
  join is a pure function, so only that final generation is computed, and the counts say
  how many generations the fold went through. Same raw messages, same list.

The reader owns one ``AIOKafkaConsumer`` **without a consumer group**: it assigns the
partitions itself and commits nothing, so the running worker is not disturbed. A lock
serialises the calls, so a web process can keep one reader for its lifetime
(``async with HistoryReader(...)`` in its lifespan). The consumer connects on the first
question and is rebuilt after a broker failure. ``snapshots_at``, ``top_list_at`` and
``replay`` at module level open a reader for a single call.

**Finding a moment.** ``offsets_for_times`` (Kafka's ListOffsets by timestamp) names the
first offset later than ``at``; the record just before it is the candidate. Every answer is
checked against the records it points at: Tansu (the dev broker) answers offset 0 whatever
the time, and a wrong answer switches the reader to a binary search over record
timestamps (a few fetches). The end of a partition is taken from the high watermark of
fetch responses, never from ListOffsets(latest), which Tansu under-reports after a
multi-record batch: the reader reads forward from the candidate until a record is later
than ``at`` or the fetch high watermark is reached. Both searches assume that a raw
topic's timestamps do not decrease with the offset (one producer per topic, publishing
in fetch order); ``replay`` only relies on it to find the window's first and last offsets.

**Snapshots from the future.** A snapshot whose ``fetched_at`` is more than 5 minutes
ahead of the reader's clock is walked past like an unreadable message (logged with topic,
partition and offset, counted as ``from_future`` in ``stats``): the worker skips it with
the same rule (``schemas/stamps.py``), so no list it served was ever built from it.

**How far back.** As far as the raw topics retain: ``retention.ms`` is 7 days, and Kafka
deletes whole segments, so somewhat more may still be there. A moment before the oldest
retained ranking (or before the oldest retained price snapshot, once retention has
deleted older ones) raises ``HistoryUnavailable``, whose ``earliest`` names the first
moment that can be answered.

**Cost.** Snapshots are decoded only when chosen (a 700-quote price snapshot takes ~40 ms
to decode, the join ~7 ms). Joined lists are cached by (ranking id, pricing id), read from
the ``snapshot_id`` message header, so another moment served by the same two snapshots
costs only the offset lookups (a few broker round trips); a moment older than ``settle``
(its answer can no longer change) is remembered, so asking about it again costs nothing.
Decoded snapshots are cached by position. ``top_list_at`` decodes and joins through
``offload`` (``decode_and_join``): inline by default; the web service passes a process
pool, so that this CPU work never blocks its event loop.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, UnsupportedVersionError

from topcoins.lifecycle import AsyncLifecycle
from topcoins.schemas import codec
from topcoins.schemas.records import PriceSnapshot, RankingSnapshot
from topcoins.schemas.stamps import FUTURE_TOLERANCE, from_future
from topcoins.schemas.topics import Topics
from topcoins.streams.aliases import AliasTable
from topcoins.streams.errors import (
    HistoryReadError,
    HistoryUnavailable,
    TimeInFuture,
)
from topcoins.streams.join import JoinResult, join_top_list

__all__ = [
    "HistoryReader",
    "HistoryStats",
    "Offload",
    "ReplayResult",
    "decode_and_join",
    "replay",
    "snapshots_at",
    "top_list_at",
]

logger = logging.getLogger(__name__)

Snapshot = RankingSnapshot | PriceSnapshot
SnapshotType = type[RankingSnapshot] | type[PriceSnapshot]
# Runs ``decode_and_join`` with its arguments somewhere (inline, a process pool).
Offload = Callable[..., Awaitable[Any]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
# How long one getmany waits for a fetch; the fetch itself waits ``fetch_wait_ms``.
_POLL_MS = 200
_DECODED_CACHE_SIZE = 8
_MOMENT_CACHE_SIZE = 1024
_FETCH_BYTES = 16 * 1024
# Why a raw message was walked past (``HistoryStats.skipped_by_reason``).
UNDECODABLE = "undecodable"
FROM_FUTURE = "from_future"


@dataclass(frozen=True)
class ReplayResult:
    """The list a replay ends with, and what it read to get there."""

    top_list: JoinResult
    snapshots_read: int  # raw messages in the window, both topics
    generations: int  # lists the fold went through (one per accepted snapshot)
    skipped: int  # repeated snapshot ids, messages of the wrong record type


@dataclass
class HistoryStats:
    """What a reader has done so far (for metrics and tests)."""

    lookups: int = 0
    join_cache_hits: int = 0
    joins: int = 0
    timestamp_searches: int = 0  # binary searches, when offsets_for_times answered wrongly
    skipped_messages: int = 0  # raw messages walked past, never served (all reasons)
    # Per reason: ``undecodable`` (or of the wrong type), ``from_future``.
    skipped_by_reason: dict[str, int] = field(default_factory=dict)

    def skipped(self, reason: str) -> None:
        """Count one raw message walked past, for ``reason``."""
        self.skipped_messages += 1
        self.skipped_by_reason[reason] = self.skipped_by_reason.get(reason, 0) + 1


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class _Source:
    """One raw topic and the record type its messages hold."""

    topic: str
    record_type: SnapshotType

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, 0)

    @property
    def kind(self) -> str:
        return "ranking" if self.record_type is RankingSnapshot else "price"


@dataclass(frozen=True)
class _Found:
    """The candidate record of one source at a moment, and what the partition retains."""

    record: ConsumerRecord[Any, Any] | None
    begin: int  # log start offset: > 0 once retention deleted something


@dataclass(frozen=True, order=True)
class _Entry:
    """One raw message's place in the replay fold."""

    timestamp: int
    topic: str
    offset: int
    snapshot_id: str | None = field(compare=False)


class HistoryReader(AsyncLifecycle):
    """Answers questions about the past from the raw topics; ``async with`` it.

    ``aliases`` defaults to the shipped alias table (the worker's). ``clock`` gives "now"
    for refusing future moments (never used by the join). ``timeout_s`` bounds each broker
    wait. ``join_cache_size`` joined lists are kept; moments older than ``settle`` are
    remembered.
    """

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        topics: Topics,
        aliases: AliasTable | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fetch_wait_ms: int = 10,
        timeout_s: float = 15.0,
        join_cache_size: int = 64,
        settle: timedelta = timedelta(minutes=5),
        client_id: str = "topcoins-history",
        offload: Offload | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._client_options = dict(client_options or {})  # security: kafka_client_options
        self.aliases = aliases if aliases is not None else AliasTable.load()
        self.settle = settle
        self.stats = HistoryStats()
        self._ranks = _Source(topics.ranks.name, RankingSnapshot)
        self._prices = _Source(topics.prices.name, PriceSnapshot)
        self._clock = clock
        self._fetch_wait_ms = fetch_wait_ms
        self._timeout_s = timeout_s
        self._client_id = client_id
        self._join_cache_size = join_cache_size
        self._offload: Offload = offload if offload is not None else _inline
        self._lock = asyncio.Lock()
        self._state = _State.UNOPENED
        self._consumer: AIOKafkaConsumer | None = None
        self._assigned: frozenset[TopicPartition] = frozenset()
        # None until the broker has answered offsets_for_times once; False once it lied.
        self._timestamp_lookup_ok: bool | None = None
        self._joins: OrderedDict[tuple[str, str | None], JoinResult] = OrderedDict()
        self._decoded: OrderedDict[tuple[str, int], Snapshot | None] = OrderedDict()
        self._moments: OrderedDict[int, tuple[str, str | None]] = OrderedDict()

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the reader; the consumer connects on the first question."""
        if self._state is _State.CLOSED:
            raise RuntimeError("this HistoryReader was stopped; create a new one")
        self._state = _State.OPEN

    async def stop(self) -> None:
        """Close the consumer; safe to call twice."""
        self._state = _State.CLOSED
        async with self._lock:
            await self._drop_consumer()

    # --- questions -----------------------------------------------------------------------

    async def snapshots_at(
        self, at: datetime
    ) -> tuple[RankingSnapshot | None, PriceSnapshot | None]:
        """The latest ranking and price snapshot with ``fetched_at <= at`` (None: none yet)."""
        at_ms = self._moment_ms(at)
        async with self._lock, self._reading():
            ranking = await self._decoded_at(self._ranks, at_ms)
            prices = await self._decoded_at(self._prices, at_ms)
        return _as(RankingSnapshot, ranking), _as(PriceSnapshot, prices)

    async def top_list_at(self, at: datetime) -> JoinResult:
        """The list as it was at ``at``: the join of the snapshots in force then.

        Raises ``HistoryUnavailable`` when the raw topics no longer hold (or never held) a
        ranking from before ``at``, or no longer hold the price snapshot in force then;
        ``TimeInFuture`` when ``at`` is later than now; ``HistoryReadError`` when the
        broker fails.
        """
        at_ms = self._moment_ms(at)
        settled = self._clock() - at > self.settle
        async with self._lock, self._reading():
            self.stats.lookups += 1
            remembered = self._moments.get(at_ms)
            if remembered is not None and (cached := self._cached_join(remembered)) is not None:
                return cached
            ranking_found = await self._find(self._ranks, at_ms)
            prices_found = await self._find(self._prices, at_ms)
            if ranking_found.record is None:
                raise await self._unavailable(self._ranks, at)
            if prices_found.record is None and prices_found.begin > 0:
                raise await self._unavailable(self._prices, at)
            result = self._join_by_headers(ranking_found, prices_found)
            if result is None:
                result = await self._decode_and_join(ranking_found, prices_found)
            if result is None:
                raise HistoryUnavailable(
                    f"no readable ranking snapshot in {self._ranks.topic} at or before {_iso(at)}"
                )
            if settled:
                self._remember(at_ms, result)
        return result

    async def replay(self, since: datetime | None, until: datetime | None) -> ReplayResult:
        """Fold every snapshot from ``since`` to ``until`` (both inclusive) into fresh state.

        ``since=None`` starts at the oldest retained message, ``until=None`` ends at the
        current end. The fold starts empty at ``since``: nothing before it is used.
        Raises ``HistoryUnavailable`` when the window holds no ranking, ``TimeInFuture``
        for a moment later than now, ``ValueError`` when ``since`` is after ``until``.
        """
        since_ms = self._moment_ms(since) if since is not None else None
        until_ms = self._moment_ms(until) if until is not None else None
        if since_ms is not None and until_ms is not None and since_ms > until_ms:
            raise ValueError(f"since ({_iso(since)}) is later than until ({_iso(until)})")
        async with self._lock, self._reading():
            ranks_read, ranks_wrong = await self._window(self._ranks, since_ms, until_ms)
            prices_read, prices_wrong = await self._window(self._prices, since_ms, until_ms)
            fold = _fold(sorted(ranks_read + prices_read), self._ranks.topic, self._prices.topic)
            ranking = await self._last_readable(self._ranks, fold.accepted[self._ranks.topic])
            prices = await self._last_readable(self._prices, fold.accepted[self._prices.topic])
            if not isinstance(ranking, RankingSnapshot):
                window = f"between {_iso(since) or 'the beginning'} and {_iso(until) or 'now'}"
                raise HistoryUnavailable(f"no ranking snapshot in {self._ranks.topic} {window}")
            top_list = self._join(ranking, _as(PriceSnapshot, prices))
        return ReplayResult(
            top_list=top_list,
            snapshots_read=len(ranks_read) + len(prices_read) + ranks_wrong + prices_wrong,
            generations=fold.generations,
            skipped=fold.duplicates + ranks_wrong + prices_wrong,
        )

    # --- joining and caches --------------------------------------------------------------

    def _join(self, ranking: RankingSnapshot, prices: PriceSnapshot | None) -> JoinResult:
        key = (ranking.snapshot_id, prices.snapshot_id if prices is not None else None)
        cached = self._cached_join(key)
        if cached is not None:
            return cached
        self.stats.joins += 1
        return self._store_join(join_top_list(ranking, prices, self.aliases))

    async def _decode_and_join(self, ranking: _Found, prices: _Found) -> JoinResult | None:
        """Decode and join the two candidates through ``offload``, walking back over a
        record that does not decode; None when no ranking record decodes."""
        ranking_record, prices_record = ranking.record, prices.record
        while ranking_record is not None:
            outcome = await self._offload(
                decode_and_join,
                ranking_record.value,
                prices_record.value if prices_record is not None else None,
                self.aliases,
                self._clock(),
            )
            if isinstance(outcome, JoinResult):
                self.stats.joins += 1
                return self._store_join(outcome)
            kind, error = outcome
            bad = ranking_record if kind == "ranking" else prices_record
            assert bad is not None
            self._skip(bad, _skip_reason(error), error)
            if kind == "ranking":
                ranking_record = await self._previous(self._ranks, bad, ranking.begin)
            else:
                prices_record = await self._previous(self._prices, bad, prices.begin)
        return None

    def _store_join(self, result: JoinResult) -> JoinResult:
        key = (result.meta.ranking_snapshot_id, result.meta.pricing_snapshot_id)
        self._joins[key] = result
        if len(self._joins) > self._join_cache_size:
            self._joins.popitem(last=False)
        return result

    def _join_by_headers(self, ranking: _Found, prices: _Found) -> JoinResult | None:
        """The cached join of the two candidates, named by their ``snapshot_id`` headers."""
        ranking_id = _snapshot_id(ranking.record)
        prices_id = _snapshot_id(prices.record)
        if ranking_id is None or (prices_id is None and prices.record is not None):
            return None
        return self._cached_join((ranking_id, prices_id))

    def _remember(self, at_ms: int, result: JoinResult) -> None:
        """Remember which join answers ``at_ms`` (only for settled moments)."""
        self._moments[at_ms] = (result.meta.ranking_snapshot_id, result.meta.pricing_snapshot_id)
        if len(self._moments) > _MOMENT_CACHE_SIZE:
            self._moments.popitem(last=False)

    def _cached_join(self, key: tuple[str, str | None]) -> JoinResult | None:
        result = self._joins.get(key)
        if result is not None:
            self._joins.move_to_end(key)
            self.stats.join_cache_hits += 1
        return result

    def _decode(self, source: _Source, record: ConsumerRecord[Any, Any]) -> Snapshot | None:
        """The record's snapshot, or None when it is not a snapshot of the source's type."""
        key = (source.topic, record.offset)
        if key in self._decoded:
            self._decoded.move_to_end(key)
            return self._decoded[key]
        snapshot: Snapshot | None
        try:
            snapshot = codec.decode_as(source.record_type, record.value)
        except Exception as exc:  # any codec failure, e.g. a timestamp out of datetime's range
            self._skip(record, UNDECODABLE, repr(exc))
            snapshot = None
        if snapshot is not None and (future := _future_error(snapshot, self._clock())):
            self._skip(record, FROM_FUTURE, future)
            snapshot = None
        self._decoded[key] = snapshot
        if len(self._decoded) > _DECODED_CACHE_SIZE:
            self._decoded.popitem(last=False)
        return snapshot

    def _skip(self, record: ConsumerRecord[Any, Any], reason: str, error: str) -> None:
        """Log and count a raw message walked past."""
        self.stats.skipped(reason)
        logger.warning(
            "skipped unreadable raw message",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason,
                "error": error,
            },
        )

    async def _decoded_at(
        self, source: _Source, at_ms: int, found: _Found | None = None
    ) -> Snapshot | None:
        """The newest readable snapshot at or before ``at_ms``, walking back over junk."""
        found = found if found is not None else await self._find(source, at_ms)
        record = found.record
        while record is not None:
            snapshot = self._decode(source, record)
            if snapshot is not None:
                return snapshot
            record = await self._previous(source, record, found.begin)
        return None

    async def _last_readable(self, source: _Source, candidates: list[_Entry]) -> Snapshot | None:
        """The snapshot of the last candidate (in fold order) that decodes."""
        for entry in reversed(candidates):
            records = await self._fetch(source.tp, entry.offset)
            if records and records[0].offset == entry.offset:
                snapshot = self._decode(source, records[0])
                if snapshot is not None:
                    return snapshot
        return None

    # --- locating ------------------------------------------------------------------------

    async def _find(self, source: _Source, at_ms: int) -> _Found:
        """The last record of ``source`` with a timestamp <= ``at_ms``."""
        tp = await self._partition(source)
        consumer = self._require_consumer()
        begin = (await consumer.beginning_offsets([tp]))[tp]
        reported_end = (await consumer.end_offsets([tp]))[tp]
        if reported_end <= begin:  # empty (Tansu's under-report never reaches begin)
            return _Found(None, begin)
        hint, from_broker = await self._first_after_hint(tp, at_ms, begin, reported_end)
        start = max(hint - 1, begin)
        records = await self._fetch(tp, start)
        if from_broker and _contradicts(records, hint, at_ms):
            logger.info(
                "the broker answered offsets_for_times wrongly; searching by timestamps",
                extra={"topic": tp.topic, "answer": hint},
            )
            self._timestamp_lookup_ok = False
            hint, _ = await self._first_after_hint(tp, at_ms, begin, reported_end)
            start = max(hint - 1, begin)
            records = await self._fetch(tp, start)
        elif from_broker:
            self._timestamp_lookup_ok = True
        return _Found(await self._read_forward(tp, records, at_ms), begin)

    async def _first_after_hint(
        self, tp: TopicPartition, at_ms: int, begin: int, end: int
    ) -> tuple[int, bool]:
        """First offset whose timestamp is > ``at_ms`` (``end`` if none), and whether the
        broker said so (True) or a binary search found it (False)."""
        consumer = self._require_consumer()
        if self._timestamp_lookup_ok is not False:
            try:
                answer = (await consumer.offsets_for_times({tp: at_ms + 1})).get(tp)
            except UnsupportedVersionError:
                self._timestamp_lookup_ok = False
            else:
                return (answer.offset if answer is not None else end), True
        self.stats.timestamp_searches += 1
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
        self, tp: TopicPartition, records: list[ConsumerRecord[Any, Any]], at_ms: int
    ) -> ConsumerRecord[Any, Any] | None:
        """From the first fetched record on: the last record with a timestamp <= ``at_ms``."""
        best = None
        while records:
            for record in records:
                if record.timestamp > at_ms:
                    return best
                best = record
            following = records[-1].offset + 1
            highwater = self._require_consumer().highwater(tp)
            if highwater is not None and following >= highwater:
                return best
            records = await self._fetch(tp, following)
        return best

    async def _previous(
        self, source: _Source, record: ConsumerRecord[Any, Any], begin: int
    ) -> ConsumerRecord[Any, Any] | None:
        offset = record.offset - 1
        while offset >= begin:
            records = await self._fetch(source.tp, offset)
            if records and records[0].offset == offset:
                return records[0]
            offset -= 1
        return None

    async def _window(
        self, source: _Source, since_ms: int | None, until_ms: int | None
    ) -> tuple[list[_Entry], int]:
        """Every message of ``source`` in the window, as fold entries; and how many had
        the wrong record type (by their ``schema`` header)."""
        tp = await self._partition(source)
        consumer = self._require_consumer()
        start = (await consumer.beginning_offsets([tp]))[tp]
        if since_ms is not None:
            before = (await self._find(source, since_ms - 1)).record
            start = before.offset + 1 if before is not None else start
        stop: int | None = None
        if until_ms is not None:
            last = (await self._find(source, until_ms)).record
            if last is None or last.offset < start:
                return [], 0
            stop = last.offset + 1
        entries: list[_Entry] = []
        wrong_type = 0
        async for record in self._scan(tp, start, stop):
            if since_ms is not None and record.timestamp < since_ms:
                continue
            if until_ms is not None and record.timestamp > until_ms:
                continue
            schema = _header(record, "schema")
            if schema is not None and schema != source.record_type.__name__:
                wrong_type += 1
                continue
            entries.append(
                _Entry(record.timestamp, record.topic, record.offset, _snapshot_id(record))
            )
        return entries, wrong_type

    # --- reading -------------------------------------------------------------------------

    async def _fetch(self, tp: TopicPartition, offset: int) -> list[ConsumerRecord[Any, Any]]:
        """The records one fetch returns from ``offset`` on; [] if the partition ends first."""
        consumer = self._require_consumer()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        consumer.resume(tp)
        consumer.seek(tp, offset)
        try:
            while True:
                batch = await consumer.getmany(tp, timeout_ms=_POLL_MS)
                records = batch.get(tp)
                if records:
                    return records
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    return []
                if loop.time() > deadline:
                    raise HistoryReadError(
                        f"no answer for {tp.topic}[{tp.partition}] offset {offset} from "
                        f"{self.bootstrap_servers} within {self._timeout_s:.0f} s"
                    )
        finally:
            consumer.pause(tp)

    async def _scan(
        self, tp: TopicPartition, start: int, stop: int | None
    ) -> AsyncIterator[ConsumerRecord[Any, Any]]:
        """Every record from ``start`` to ``stop`` (exclusive), or to the current end."""
        consumer = self._require_consumer()
        loop = asyncio.get_running_loop()
        consumer.resume(tp)
        consumer.seek(tp, start)
        deadline = loop.time() + self._timeout_s
        try:
            while stop is None or await consumer.position(tp) < stop:
                batch = await consumer.getmany(tp, timeout_ms=_POLL_MS)
                records = batch.get(tp, [])
                for record in records:
                    if stop is not None and record.offset >= stop:
                        return
                    yield record
                if records:
                    deadline = loop.time() + self._timeout_s
                    continue
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    return
                if loop.time() > deadline:
                    raise HistoryReadError(
                        f"{tp.topic}[{tp.partition}] stopped answering at offset "
                        f"{await consumer.position(tp)} ({self.bootstrap_servers})"
                    )
        finally:
            consumer.pause(tp)

    async def _partition(self, source: _Source) -> TopicPartition:
        """The source's partition, assigned (and paused) on the consumer."""
        tp = source.tp
        if tp in self._assigned:
            return tp
        consumer = await self._connected()
        # Never assign a missing topic: the metadata request could auto-create it.
        if source.topic not in await consumer.topics():
            raise HistoryUnavailable(
                f"topic {source.topic} does not exist on {self.bootstrap_servers}: no "
                f"{source.kind} snapshot was ever published with this TOPIC_PREFIX"
            )
        self._assigned = self._assigned | {tp}
        consumer.assign(sorted(self._assigned))
        consumer.pause(*self._assigned)
        return tp

    async def _connected(self) -> AIOKafkaConsumer:
        if self._consumer is not None:
            return self._consumer
        consumer = AIOKafkaConsumer(
            **self._client_options,
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,  # no group: the worker's offsets and assignment stay untouched
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._fetch_wait_ms,
            max_partition_fetch_bytes=_FETCH_BYTES,
            fetch_max_bytes=_FETCH_BYTES,
            request_timeout_ms=int(self._timeout_s * 1000),
            client_id=self._client_id,
        )
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        return consumer

    def _require_consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "connect first (_partition does)"
        return self._consumer

    async def _drop_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        self._assigned = frozenset()
        if consumer is not None:
            await consumer.stop()

    def _reading(self) -> _Reading:
        if self._state is not _State.OPEN:
            raise RuntimeError(f"HistoryReader is {self._state.value}: use it inside async with")
        return _Reading(self)

    def _moment_ms(self, moment: datetime) -> int:
        if moment.tzinfo is None:
            raise ValueError(f"{moment!r} is naive: give a timezone-aware datetime (UTC)")
        now = self._clock()
        if moment > now:
            raise TimeInFuture(
                f"{_iso(moment)} is in the future (now is {_iso(now)}): there is no list for it yet"
            )
        return (moment - _EPOCH) // _MILLISECOND

    async def _unavailable(self, source: _Source, at: datetime) -> HistoryUnavailable:
        """The error for "no ``source`` snapshot retained at or before ``at``"."""
        oldest = await self._oldest(source)
        if oldest is None:
            detail = f"{source.topic} holds no {source.kind} snapshot yet"
        else:
            detail = (
                f"the oldest {source.kind} snapshot retained in {source.topic} is from "
                f"{_iso(oldest)}"
            )
        return HistoryUnavailable(
            f"no list for {_iso(at)}: {detail} (the raw topics keep about 7 days)",
            earliest=await self._earliest(),
        )

    async def _oldest(self, source: _Source) -> datetime | None:
        """``fetched_at`` (the timestamp) of the oldest message ``source`` retains."""
        tp = await self._partition(source)
        begin = (await self._require_consumer().beginning_offsets([tp]))[tp]
        records = await self._fetch(tp, begin)
        return _time_of(records[0]) if records else None

    async def _earliest(self) -> datetime | None:
        """The earliest moment a list can be given for: the oldest retained ranking, or
        the oldest retained price snapshot if retention already deleted older ones."""
        oldest_ranking = await self._oldest(self._ranks)
        if oldest_ranking is None:
            return None
        tp = await self._partition(self._prices)
        if (await self._require_consumer().beginning_offsets([tp]))[tp] == 0:
            return oldest_ranking
        oldest_prices = await self._oldest(self._prices)
        return max(oldest_ranking, oldest_prices) if oldest_prices else oldest_ranking


class _Reading:
    """Translates broker failures while reading into ``HistoryReadError`` and drops the
    consumer, so the next question reconnects."""

    def __init__(self, reader: HistoryReader) -> None:
        self.reader = reader

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, KafkaError | OSError):
            await self.reader._drop_consumer()
            raise HistoryReadError(
                f"reading the raw topics from {self.reader.bootstrap_servers} failed: {exc!r}"
            ) from exc
        if isinstance(exc, HistoryReadError):
            await self.reader._drop_consumer()


@dataclass(frozen=True)
class _Fold:
    accepted: dict[str, list[_Entry]]  # per topic: the entries applied, in fold order
    generations: int
    duplicates: int


def _fold(entries: list[_Entry], ranks_topic: str, prices_topic: str) -> _Fold:
    """Apply sorted entries to fresh state as the worker would; count the generations."""
    accepted: dict[str, list[_Entry]] = {ranks_topic: [], prices_topic: []}
    generations = duplicates = 0
    for entry in entries:
        in_force = accepted[entry.topic]
        if (
            in_force
            and entry.snapshot_id is not None
            and entry.snapshot_id == in_force[-1].snapshot_id
        ):
            duplicates += 1  # a retried publish of the snapshot in force
            continue
        in_force.append(entry)
        if accepted[ranks_topic]:
            generations += 1
    return _Fold(accepted=accepted, generations=generations, duplicates=duplicates)


def _contradicts(records: list[ConsumerRecord[Any, Any]], hint: int, at_ms: int) -> bool:
    """True when the records show that ``hint`` is not the first offset later than at_ms."""
    by_offset = {record.offset: record for record in records}
    before, after = by_offset.get(hint - 1), by_offset.get(hint)
    return (before is not None and before.timestamp > at_ms) or (
        after is not None and after.timestamp <= at_ms
    )


def _header(record: ConsumerRecord[Any, Any], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


def _snapshot_id(record: ConsumerRecord[Any, Any] | None) -> str | None:
    return _header(record, "snapshot_id") if record is not None else None


def _time_of(record: ConsumerRecord[Any, Any] | None) -> datetime | None:
    return datetime.fromtimestamp(record.timestamp / 1000, UTC) if record is not None else None


def _ms_of(moment: datetime) -> int:
    return (moment - _EPOCH) // _MILLISECOND


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _as(record_type: Any, snapshot: Snapshot | None) -> Any:
    return snapshot if isinstance(snapshot, record_type) else None


def decode_and_join(
    ranking: bytes, prices: bytes | None, aliases: AliasTable, now: datetime | None = None
) -> JoinResult | tuple[Literal["ranking", "price"], str]:
    """Decode a raw ranking and price message and join them; or, when one does not
    decode (or, given ``now``, is from the future: ``schemas/stamps.py``), which one
    (``"ranking"`` or ``"price"``) and why. A pure function of its arguments, so it can
    run in another process."""
    try:
        ranking_snapshot = codec.decode_as(RankingSnapshot, ranking)
    except Exception as exc:  # any codec failure, e.g. a timestamp out of datetime's range
        return "ranking", repr(exc)
    if now is not None and (future := _future_error(ranking_snapshot, now)):
        return "ranking", future
    price_snapshot = None
    if prices is not None:
        try:
            price_snapshot = codec.decode_as(PriceSnapshot, prices)
        except Exception as exc:
            return "price", repr(exc)
        if now is not None and (future := _future_error(price_snapshot, now)):
            return "price", future
    return join_top_list(ranking_snapshot, price_snapshot, aliases)


def _future_error(snapshot: Snapshot, now: datetime) -> str | None:
    """Why ``snapshot`` is skipped as from the future (``schemas/stamps.py``), else None."""
    if not from_future(snapshot.fetched_at, now):
        return None
    return (
        f"{FROM_FUTURE}: fetched_at {_iso(snapshot.fetched_at)} is more than "
        f"{FUTURE_TOLERANCE} ahead of the reader's clock ({_iso(now)})"
    )


def _skip_reason(error: str) -> str:
    """The reason a ``decode_and_join`` error names: ``from_future`` or ``undecodable``."""
    return FROM_FUTURE if error.startswith(f"{FROM_FUTURE}:") else UNDECODABLE


async def _inline(function: Callable[..., Any], *args: Any) -> Any:
    return function(*args)


# --- one-call helpers ------------------------------------------------------------------


async def snapshots_at(
    bootstrap: str | Sequence[str], topics: Topics, at: datetime
) -> tuple[RankingSnapshot | None, PriceSnapshot | None]:
    """``HistoryReader.snapshots_at`` with a reader opened for this call."""
    async with HistoryReader(bootstrap, topics, AliasTable()) as reader:
        return await reader.snapshots_at(at)


async def top_list_at(
    bootstrap: str | Sequence[str], topics: Topics, at: datetime, aliases: AliasTable
) -> JoinResult:
    """``HistoryReader.top_list_at`` with a reader opened for this call."""
    async with HistoryReader(bootstrap, topics, aliases) as reader:
        return await reader.top_list_at(at)


async def replay(
    bootstrap: str | Sequence[str],
    topics: Topics,
    since: datetime | None,
    until: datetime | None,
    aliases: AliasTable,
) -> ReplayResult:
    """``HistoryReader.replay`` with a reader opened for this call."""
    async with HistoryReader(bootstrap, topics, aliases) as reader:
        return await reader.replay(since, until)
