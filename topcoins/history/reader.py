"""``HistoryReader``: the joined list as it was at a moment, and deterministic replays.

The raw snapshot topics (``<prefix>.ranks.v1`` and ``<prefix>.prices.v1``, one partition
each, 7-day retention) hold every snapshot the producers fetched; each message's Kafka
timestamp is the snapshot's ``fetched_at``. From them a ``HistoryReader`` answers:

* ``snapshots_at(at)``: the latest ranking and the latest price snapshot with
  ``fetched_at <= at``; ``top_list_at(at)`` joins them with ``join_top_list``, exactly as
  the worker would have.
* ``replay(since, until)``: every snapshot from ``since`` (or the beginning) to ``until``
  (or the current end), folded into fresh state (``topcoins.domain.fold``). The result is
  the join of the last ranking and the last price snapshot: the join is a pure function,
  so only that final generation is computed, and the counts say how many generations the
  fold went through. Same raw messages, same list.

A lock serialises the calls, so a web process can keep one reader for its lifetime
(``async with HistoryReader(...)`` in its lifespan); its consumer has no group and
connects on the first question (``topcoins.history.connection``). ``snapshots_at``,
``top_list_at`` and ``replay`` at module level open a reader for a single call.

**How far back.** As far as the raw topics retain: ``retention.ms`` is 7 days, and Kafka
deletes whole segments, so somewhat more may still be there. A moment before the oldest
retained ranking (or before the oldest retained price snapshot, once retention has
deleted older ones) raises ``HistoryUnavailable``, whose ``earliest`` names the first
moment that can be answered.

**Cost.** Finding a moment costs a few broker round trips (``topcoins.history.locate``),
none once it falls between two records already read (``topcoins.history.time_index``);
joins and settled moments are kept (``topcoins.history.caches``). ``top_list_at`` decodes
and joins through ``offload`` (``decode_join_and_present``): inline by default; the web
service passes a process pool, so that this CPU work never blocks its event loop, and
asks with ``presented_at`` for the list with its rows encoded, which is what it keeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from topcoins.domain import AliasTable, FoldEntry, JoinResult, fold, join_top_list
from topcoins.formats import iso_utc
from topcoins.history.caches import JoinCache, Present, key_of_records
from topcoins.history.connection import Connection
from topcoins.history.decode import (
    Decoder,
    Joined,
    Offload,
    decode_join_and_present,
    inline,
    joined,
    skip_reason,
)
from topcoins.history.errors import HistoryUnavailable, TimeInFuture
from topcoins.history.locate import Found, Locator
from topcoins.history.raw_topics import RawTopic, millis
from topcoins.history.stats import HistoryStats
from topcoins.history.window import window_entries
from topcoins.lifecycle import AsyncLifecycle
from topcoins.schemas.records import PriceSnapshot, RankingSnapshot, Snapshot
from topcoins.schemas.topics import Topics

__all__ = ["HistoryReader", "ReplayResult", "replay", "snapshots_at", "top_list_at"]


@dataclass(frozen=True)
class ReplayResult:
    """The list a replay ends with, and what it read to get there."""

    top_list: JoinResult
    snapshots_read: int  # raw messages in the window, both topics
    generations: int  # lists the fold went through (one per accepted snapshot)
    skipped: int  # repeated snapshot ids, messages of the wrong record type


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
        self.aliases = aliases if aliases is not None else AliasTable.load()
        self.settle = settle
        self.stats = HistoryStats()
        self._ranks = RawTopic(topics.ranks.name, RankingSnapshot)
        self._prices = RawTopic(topics.prices.name, PriceSnapshot)
        self._clock = clock
        self._offload: Offload = offload if offload is not None else inline
        self._lock = asyncio.Lock()
        self._connection = Connection(
            bootstrap_servers,
            client_id=client_id,
            fetch_wait_ms=fetch_wait_ms,
            timeout_s=timeout_s,
            client_options=client_options,  # security: kafka_client_options
        )
        self._locator = Locator(self._connection, self.stats)
        self._decoder = Decoder(clock, self.stats)
        self._joins = JoinCache(join_cache_size, self.stats)

    async def _start(self) -> None:
        """Nothing to open: the consumer connects on the first question."""

    async def _stop(self) -> None:
        async with self._lock:
            await self._connection.drop()

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
        result: JoinResult = await self.presented_at(at, joined)
        return result

    async def presented_at(self, at: datetime, present: Present) -> Any:
        """``present(top_list_at(at))``, computed where the join is (``offload``) and kept
        instead of the join: ``present`` must be a module-level function. Same errors."""
        at_ms = self._moment_ms(at)
        settled = self._clock() - at > self.settle
        joins = self._joins
        async with self._lock, self._reading():
            remembered = joins.at(present, at_ms)
            if remembered is not None:
                return remembered
            ranking = await self._locator.find(self._ranks, at_ms)
            prices = await self._locator.find(self._prices, at_ms)
            if ranking.record is None:
                raise await self._unavailable(self._ranks, at)
            if prices.record is None and prices.begin > 0:
                raise await self._unavailable(self._prices, at)
            key = key_of_records(ranking.record, prices.record)
            value = joins.get(present, key) if key is not None else None
            if value is None:
                outcome = await self._decode_and_join(ranking, prices, present)
                if outcome is None:
                    raise HistoryUnavailable(
                        f"no readable ranking snapshot in {self._ranks.name} at or before "
                        f"{iso_utc(at)}"
                    )
                key, value = outcome.key, joins.put(present, outcome.key, outcome.value)
            if settled and key is not None:
                joins.remember(present, at_ms, key)
        return value

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
            raise ValueError(f"since ({iso_utc(since)}) is later than until ({iso_utc(until)})")
        async with self._lock, self._reading():
            connection, locator = self._connection, self._locator
            ranks, ranks_wrong = await window_entries(
                connection, locator, self._ranks, since_ms, until_ms
            )
            prices, prices_wrong = await window_entries(
                connection, locator, self._prices, since_ms, until_ms
            )
            folded = fold(ranks + prices, self._ranks.name, self._prices.name)
            ranking = await self._last_readable(self._ranks, folded.accepted[self._ranks.name])
            in_force = await self._last_readable(self._prices, folded.accepted[self._prices.name])
            if not isinstance(ranking, RankingSnapshot):
                window = (
                    f"between {iso_utc(since) or 'the beginning'} and {iso_utc(until) or 'now'}"
                )
                raise HistoryUnavailable(f"no ranking snapshot in {self._ranks.name} {window}")
            top_list = self._join(ranking, _as(PriceSnapshot, in_force))
        return ReplayResult(
            top_list=top_list,
            snapshots_read=len(ranks) + len(prices) + ranks_wrong + prices_wrong,
            generations=folded.generations,
            skipped=folded.duplicates + ranks_wrong + prices_wrong,
        )

    # --- decoding and joining ------------------------------------------------------------

    def _join(self, ranking: RankingSnapshot, prices: PriceSnapshot | None) -> JoinResult:
        key = (ranking.snapshot_id, prices.snapshot_id if prices is not None else None)
        cached: JoinResult | None = self._joins.get(joined, key)
        if cached is not None:
            return cached
        self.stats.joins += 1
        return self._joins.put(joined, key, join_top_list(ranking, prices, self.aliases))

    async def _decode_and_join(
        self, ranking: Found, prices: Found, present: Present
    ) -> Joined | None:
        """Decode, join and present the two candidates through ``offload``, walking back
        over a record that does not decode; None when no ranking record decodes."""
        ranking_ref, prices_ref = ranking.record, prices.record
        while ranking_ref is not None:
            ranking_record = await self._locator.raw(self._ranks, ranking_ref)
            prices_record = None
            if prices_ref is not None:
                prices_record = await self._locator.raw(self._prices, prices_ref)
            outcome = await self._offload(
                decode_join_and_present,
                ranking_record.value,
                prices_record.value if prices_record is not None else None,
                self.aliases,
                self._clock(),
                present,
            )
            if isinstance(outcome, Joined):
                self.stats.joins += 1
                return outcome
            kind, error = outcome
            bad = ranking_record if kind == "ranking" else prices_record
            assert bad is not None
            self._decoder.skip(bad, skip_reason(error), error)
            if kind == "ranking":
                ranking_ref = await self._locator.previous(self._ranks, ranking_ref, ranking.begin)
            else:
                assert prices_ref is not None
                prices_ref = await self._locator.previous(self._prices, prices_ref, prices.begin)
        return None

    async def _decoded_at(self, topic: RawTopic, at_ms: int) -> Snapshot | None:
        """The newest readable snapshot at or before ``at_ms``, walking back over junk."""
        found = await self._locator.find(topic, at_ms)
        ref = found.record
        while ref is not None:
            snapshot = self._decoder.decode(topic, await self._locator.raw(topic, ref))
            if snapshot is not None:
                return snapshot
            ref = await self._locator.previous(topic, ref, found.begin)
        return None

    async def _last_readable(
        self, topic: RawTopic, candidates: Sequence[FoldEntry]
    ) -> Snapshot | None:
        """The snapshot of the last candidate (in fold order) that decodes."""
        for entry in reversed(candidates):
            records = await self._connection.fetch(topic.tp, entry.offset)
            if records and records[0].offset == entry.offset:
                snapshot = self._decoder.decode(topic, records[0])
                if snapshot is not None:
                    return snapshot
        return None

    # --- refusals ------------------------------------------------------------------------

    def _reading(self) -> AbstractAsyncContextManager[None]:
        self._check_started()
        return self._connection.reading()

    def _moment_ms(self, moment: datetime) -> int:
        if moment.tzinfo is None:
            raise ValueError(f"{moment!r} is naive: give a timezone-aware datetime (UTC)")
        now = self._clock()
        if moment > now:
            raise TimeInFuture(
                f"{iso_utc(moment)} is in the future (now is {iso_utc(now)}): "
                "there is no list for it yet"
            )
        return millis(moment)

    async def _unavailable(self, topic: RawTopic, at: datetime) -> HistoryUnavailable:
        """The error for "no ``topic`` snapshot retained at or before ``at``"."""
        oldest = await self._locator.oldest(topic)
        if oldest is None:
            detail = f"{topic.name} holds no {topic.kind} snapshot yet"
        else:
            detail = (
                f"the oldest {topic.kind} snapshot retained in {topic.name} is from "
                f"{iso_utc(oldest)}"
            )
        return HistoryUnavailable(
            f"no list for {iso_utc(at)}: {detail} (the raw topics keep about 7 days)",
            earliest=await self._locator.earliest(self._ranks, self._prices),
        )


def _as(record_type: Any, snapshot: Snapshot | None) -> Any:
    return snapshot if isinstance(snapshot, record_type) else None


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
