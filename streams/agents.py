"""The worker's agents: decode a snapshot, join, write the changed generation to the top topic.

One agent per input topic; both hand their messages to one ``TopListUpdater``, which runs
one message at a time (a lock), so the generations on the top topic never interleave.

For each accepted snapshot the updater writes, on the single-partition top topic and in
this order: every changed ``TopCoin`` row (key = symbol), a tombstone for every symbol that
left the list, then the ``TopListMeta`` (key ``_meta``). A reader that applies messages in
order and publishes its view at each meta therefore only sees complete generations. The
sends go through one Faust producer, are issued in order and awaited before the tables
change, so a crash never leaves a table ahead of the topic.

A message that is not a snapshot of the expected type is logged (topic, partition,
offset), counted in ``topcoins_worker_skipped_messages_total`` and skipped. A snapshot
older (by ``fetched_at``) than the one in force, or the same snapshot again, is skipped too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum

import faust
from faust.types import AgentT, StreamT, TopicT
from faust.types.tuples import Message

from topcoins.schemas import codec
from topcoins.schemas.codec import DecodeError
from topcoins.schemas.records import PriceSnapshot, RankingSnapshot
from topcoins.schemas.topics import META_KEY
from topcoins.streams.aliases import AliasTable
from topcoins.streams.join import JoinResult, join_top_list
from topcoins.streams.metrics import WorkerMetrics
from topcoins.streams.tables import SnapshotKind, WorkerTables
from topcoins.streams.topics import WorkerTopics

__all__ = ["Outcome", "TopListUpdater", "WorkerAgents", "register_agents"]

logger = logging.getLogger(__name__)

Snapshot = RankingSnapshot | PriceSnapshot


class Outcome(StrEnum):
    """What the updater did with one input message (what the agents yield)."""

    PUBLISHED = "published"
    STORED = "stored"  # prices kept; no ranking yet to join them with
    UNDECODABLE = "undecodable"
    WRONG_TYPE = "wrong_type"
    STALE = "stale"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class WorkerAgents:
    """The two agents, one per input topic."""

    ranks: AgentT
    prices: AgentT


class TopListUpdater:
    """Applies input snapshots to the tables and the top topic, one message at a time."""

    def __init__(
        self, tables: WorkerTables, top: TopicT, aliases: AliasTable, metrics: WorkerMetrics
    ) -> None:
        self.tables = tables
        self.top = top
        self.aliases = aliases
        self.metrics = metrics
        self._lock = asyncio.Lock()
        # Decoded form of the bytes in the ``latest`` table, to decode each snapshot once.
        self._decoded: dict[SnapshotKind, tuple[bytes, Snapshot]] = {}

    async def apply(self, kind: SnapshotKind, message: Message, value: bytes | None) -> Outcome:
        """Handle one input message of ``kind``; never raises for bad input data."""
        snapshot = self._decode(kind, message, value)
        if isinstance(snapshot, Outcome):
            return snapshot
        assert value is not None
        async with self._lock:
            current = self._in_force(kind)
            if current is not None:
                if snapshot.snapshot_id == current.snapshot_id:
                    return self._skip(message, Outcome.DUPLICATE, snapshot)
                if snapshot.fetched_at < current.fetched_at:
                    return self._skip(message, Outcome.STALE, snapshot)
            ranking, prices = self._join_inputs(snapshot)
            if ranking is None:
                self._store(kind, value, snapshot)
                logger.info(
                    "price snapshot stored; waiting for a ranking",
                    extra={"snapshot_id": snapshot.snapshot_id},
                )
                return Outcome.STORED
            started = time.perf_counter()
            result = join_top_list(ranking, prices, self.aliases)
            self.metrics.join_seconds.observe(time.perf_counter() - started)
            await self._publish(result)
            self._store(kind, value, snapshot)
            self.metrics.joins.inc()
            self.metrics.unmatched_assets.set(result.meta.unmatched)
            self._log_join(kind, snapshot, result)
            return Outcome.PUBLISHED

    def _decode(
        self, kind: SnapshotKind, message: Message, value: bytes | None
    ) -> Snapshot | Outcome:
        try:
            record = codec.decode(value)
        except DecodeError as exc:
            return self._reject(message, Outcome.UNDECODABLE, str(exc))
        if not isinstance(record, kind.record_type):
            detail = f"expected {kind.record_type.__name__}, got {type(record).__name__}"
            return self._reject(message, Outcome.WRONG_TYPE, detail)
        return record

    def _reject(self, message: Message, outcome: Outcome, detail: str) -> Outcome:
        logger.warning(
            "skipped input message: %s",
            detail,
            extra={
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "reason": outcome.value,
            },
        )
        self.metrics.skipped_messages.labels(message.topic, outcome.value).inc()
        return outcome

    def _skip(self, message: Message, outcome: Outcome, snapshot: Snapshot) -> Outcome:
        logger.info(
            "skipped %s snapshot",
            outcome.value,
            extra={
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "snapshot_id": snapshot.snapshot_id,
                "fetched_at": snapshot.fetched_at.isoformat(),
            },
        )
        self.metrics.skipped_messages.labels(message.topic, outcome.value).inc()
        return outcome

    def _join_inputs(
        self, snapshot: Snapshot
    ) -> tuple[RankingSnapshot | None, PriceSnapshot | None]:
        """The new snapshot with the one in force of the other kind."""
        if isinstance(snapshot, RankingSnapshot):
            prices = self._in_force(SnapshotKind.PRICES)
            return snapshot, prices if isinstance(prices, PriceSnapshot) else None
        ranking = self._in_force(SnapshotKind.RANKING)
        return ranking if isinstance(ranking, RankingSnapshot) else None, snapshot

    def _in_force(self, kind: SnapshotKind) -> Snapshot | None:
        raw = self.tables.latest.get(kind.value)
        if raw is None:
            return None
        cached = self._decoded.get(kind)
        if cached is not None and cached[0] == raw:
            return cached[1]
        try:
            snapshot = codec.decode_as(kind.record_type, raw)
        except DecodeError as exc:
            # Only bytes that decoded are stored, so only a codec change gets here.
            logger.warning(
                "stored snapshot no longer decodes; treating it as absent",
                extra={"kind": kind.value, "error": str(exc)},
            )
            return None
        self._decoded[kind] = (raw, snapshot)
        return snapshot

    def _store(self, kind: SnapshotKind, raw: bytes, snapshot: Snapshot) -> None:
        self.tables.latest[kind.value] = raw
        self._decoded[kind] = (raw, snapshot)

    async def _publish(self, result: JoinResult) -> None:
        """Write changed rows, then tombstones, then the meta; wait for all; then the table."""
        top_coins = self.tables.top_coins
        encoded = {row.symbol: codec.encode(row) for row in result.rows}
        changed = [(s, payload) for s, payload in encoded.items() if top_coins.get(s) != payload]
        departed = sorted(set(top_coins.keys()) - encoded.keys())
        # Each ``send`` returns once the message is queued in the producer, so the queue
        # (and the single partition) holds them in this order; then wait for delivery.
        deliveries = [await self.top.send(key=s, value=payload) for s, payload in changed]
        deliveries += [await self.top.send(key=s, value=None) for s in departed]
        deliveries.append(await self.top.send(key=META_KEY, value=codec.encode(result.meta)))
        await asyncio.gather(*deliveries)
        for symbol, payload in changed:
            top_coins[symbol] = payload
        for symbol in departed:
            del top_coins[symbol]
        self.metrics.rows_written.labels("row").inc(len(changed))
        self.metrics.rows_written.labels("tombstone").inc(len(departed))

    def _log_join(self, kind: SnapshotKind, snapshot: Snapshot, result: JoinResult) -> None:
        """One line per generation; a warning when the ranking needed repair or ids clashed."""
        report = result.report
        needs_attention = bool(
            report.dropped or report.shortfall or report.claim_conflicts or report.duplicate_cmc_ids
        )
        logger.log(
            logging.WARNING if needs_attention else logging.INFO,
            "published top list",
            extra={
                "trigger": kind.value,
                "snapshot_id": snapshot.snapshot_id,
                "ranking_snapshot_id": result.meta.ranking_snapshot_id,
                "pricing_snapshot_id": result.meta.pricing_snapshot_id,
                "rows": len(result.rows),
                "unmatched": result.meta.unmatched,
                "dropped": [f"{d.symbol}@{d.position}:{d.reason}" for d in report.dropped],
                "beyond_depth": report.beyond_depth,
                "shortfall": report.shortfall,
                "missing_alias_targets": [
                    f"{m.symbol}->{m.target}" for m in report.missing_alias_targets
                ],
                "claim_conflicts": [
                    f"{c.symbol}->{c.cmc_id} held by {c.held_by}" for c in report.claim_conflicts
                ],
                "duplicate_cmc_ids": list(report.duplicate_cmc_ids),
            },
        )


def register_agents(app: faust.App, topics: WorkerTopics, updater: TopListUpdater) -> WorkerAgents:
    """Attach one agent per input topic to ``app``; each yields an ``Outcome`` per message."""

    async def process_ranks(stream: StreamT[bytes]) -> AsyncIterator[Outcome]:
        async for event in stream.events():
            yield await updater.apply(SnapshotKind.RANKING, event.message, event.value)

    async def process_prices(stream: StreamT[bytes]) -> AsyncIterator[Outcome]:
        async for event in stream.events():
            yield await updater.apply(SnapshotKind.PRICES, event.message, event.value)

    return WorkerAgents(
        ranks=app.agent(topics.ranks, name="process-ranks", concurrency=1)(process_ranks),
        prices=app.agent(topics.prices, name="process-prices", concurrency=1)(process_prices),
    )
