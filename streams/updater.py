"""``TopListUpdater``: applies the input snapshots to the tables and the top topic.

Both agents (``streams/agents.py``) hand their messages to one updater, which runs one
message at a time (a lock), so the generations on the top topic never interleave. For each
accepted snapshot it joins the pair in force (``topcoins.domain.join_top_list``) and hands
the list to its ``GenerationWriter`` (``streams/generations.py``); the snapshot is stored
in the ``latest`` table only once the generation is out, so a crash never leaves a table
ahead of the topic (except a snapshot stored from a backlog, below: it is published once
the worker has caught up).

A message that is not a snapshot of the expected type is logged (topic, partition,
offset), counted in ``topcoins_worker_skipped_messages_total`` and skipped. A snapshot
older (by ``fetched_at``) than the one in force, or the same snapshot again, is skipped too,
and so is one fetched more than ``FUTURE_TOLERANCE`` ahead of the worker's clock: kept in
force, it would make every real snapshot after it look stale, for ever.

**Backlog collapse.** A worker that starts on a long backlog (a new consumer group reads
up to 7 days of snapshots) does not join and publish a generation for each old snapshot.
A snapshot that is not the last message available on its partition (``caught_up=False``,
``streams/agents.py``) is only stored as the snapshot in force; the join runs for the last
one. The stored pair is *pending*: if the last message turns out to be unusable
(undecodable, stale, a repeat), the pending pair is joined and published then. A worker
starts pending, since its recovered tables may hold a pair it never published. Counted in
``topcoins_worker_backlog_snapshots_total``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from faust.types.tuples import Message

from topcoins.domain import AliasTable, JoinResult, join_top_list
from topcoins.schemas import codec
from topcoins.schemas.records import PriceSnapshot, RankingSnapshot, Snapshot
from topcoins.schemas.stamps import from_future
from topcoins.streams.generations import GenerationWriter, TopSender
from topcoins.streams.metrics import WorkerMetrics
from topcoins.streams.tables import SnapshotKind, WorkerTables
from topcoins.tracing import enabled as tracing_enabled
from topcoins.tracing import links_to, span_context_from_headers, start_span

if TYPE_CHECKING:
    from opentelemetry.trace import Link, SpanContext

__all__ = ["Outcome", "TopListUpdater"]

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    """What the updater did with one input message (what the agents yield)."""

    PUBLISHED = "published"
    STORED = "stored"  # prices kept; no ranking yet to join them with
    BACKLOG = "backlog"  # kept as the snapshot in force; newer messages wait on the partition
    UNDECODABLE = "undecodable"
    WRONG_TYPE = "wrong_type"
    STALE = "stale"
    DUPLICATE = "duplicate"
    FROM_FUTURE = "from_future"  # fetched_at beyond FUTURE_TOLERANCE ahead of the clock
    FAILED = "failed"  # handling it raised (a bug, or the top topic refused a write)


class TopListUpdater:
    """Applies input snapshots to the tables and the top topic, one message at a time."""

    def __init__(
        self, tables: WorkerTables, top: TopSender, aliases: AliasTable, metrics: WorkerMetrics
    ) -> None:
        self.tables = tables
        self.aliases = aliases
        self.metrics = metrics
        self.writer = GenerationWriter(top, tables.top_coins, metrics)
        self._lock = asyncio.Lock()
        # Decoded form of the bytes in the ``latest`` table, to decode each snapshot once.
        self._decoded: dict[SnapshotKind, tuple[bytes, Snapshot]] = {}
        # The poll (publish span) that sent each snapshot in force, when traced: the join
        # span links to both.
        self._traced_by: dict[SnapshotKind, SpanContext | None] = {}
        # True while the snapshots in force may differ from the last published generation.
        self._pending = True

    async def apply(
        self, kind: SnapshotKind, message: Message, value: bytes | None, *, caught_up: bool = True
    ) -> Outcome:
        """Handle one input message of ``kind``; never raises for bad input data.

        ``caught_up=False`` says newer messages wait on the message's partition: an
        accepted snapshot is then stored without a join (``Outcome.BACKLOG``).
        """
        snapshot = self._decode(kind, message, value)
        async with self._lock:
            if not isinstance(snapshot, Outcome):
                current = self._in_force(kind)
                if current is not None and snapshot.snapshot_id == current.snapshot_id:
                    snapshot = self._skip(message, Outcome.DUPLICATE, snapshot)
                elif current is not None and snapshot.fetched_at < current.fetched_at:
                    snapshot = self._skip(message, Outcome.STALE, snapshot)
            if isinstance(snapshot, Outcome):
                if caught_up and self._pending:
                    await self._publish_in_force(kind)
                return snapshot
            assert value is not None
            traced_by = span_context_from_headers(message.headers)
            ranking, prices = self._join_inputs(snapshot)
            if not caught_up or ranking is None:
                self._store(kind, value, snapshot, traced_by)
                self._pending = True
                if not caught_up:
                    self.metrics.backlog_snapshots.inc()
                    return Outcome.BACKLOG
                logger.info(
                    "price snapshot stored; waiting for a ranking",
                    extra={"snapshot_id": snapshot.snapshot_id},
                )
                return Outcome.STORED
            await self._publish_join(kind, ranking, prices, traced_by)
            self._store(kind, value, snapshot, traced_by)
            return Outcome.PUBLISHED

    async def _publish_in_force(self, trigger: SnapshotKind) -> None:
        """Join and publish the snapshots in force (the pending pair), if there is a ranking."""
        ranking = self._in_force(SnapshotKind.RANKING)
        if isinstance(ranking, RankingSnapshot):
            prices = self._in_force(SnapshotKind.PRICES)
            await self._publish_join(
                trigger,
                ranking,
                prices if isinstance(prices, PriceSnapshot) else None,
                self._traced_by.get(trigger),
            )

    async def _publish_join(
        self,
        trigger: SnapshotKind,
        ranking: RankingSnapshot,
        prices: PriceSnapshot | None,
        traced_by: SpanContext | None,
    ) -> None:
        """Join one pair and publish the generation; no longer pending once it is out.

        Traced as a ``join`` span linked to the polls that sent the pair (``traced_by``:
        the trigger's) around a ``write top topic`` span."""
        with start_span("join", links=self._links(trigger, prices is not None, traced_by)):
            await self._join_and_write(trigger, ranking, prices)

    def _links(
        self, trigger: SnapshotKind, with_prices: bool, traced_by: SpanContext | None
    ) -> list[Link] | None:
        """Span links to the ranking's and the prices' polls (None when tracing is off)."""
        if not tracing_enabled():
            return None
        senders = {**self._traced_by, trigger: traced_by}
        kinds = (
            (SnapshotKind.RANKING, SnapshotKind.PRICES) if with_prices else (SnapshotKind.RANKING,)
        )
        return links_to(senders.get(kind) for kind in kinds)

    async def _join_and_write(
        self, trigger: SnapshotKind, ranking: RankingSnapshot, prices: PriceSnapshot | None
    ) -> None:
        started = time.perf_counter()
        result = join_top_list(ranking, prices, self.aliases)
        joined = time.perf_counter()
        self.metrics.join_seconds.observe(joined - started)
        self.metrics.stage_seconds.labels(trigger.value, "join").observe(joined - started)
        with start_span("write top topic", kind="producer"):
            await self.writer.write(result)
        self.metrics.stage_seconds.labels(trigger.value, "write").observe(
            time.perf_counter() - joined
        )
        self._pending = False
        self.metrics.joins.inc()
        self.metrics.unmatched_assets.set(result.meta.unmatched)
        self.metrics.invalid_prices.set(len(result.report.invalid_prices))
        self._log_join(trigger, result)

    def _decode(
        self, kind: SnapshotKind, message: Message, value: bytes | None
    ) -> Snapshot | Outcome:
        try:
            with self.metrics.stage_seconds.labels(kind.value, "decode").time():
                record = codec.decode(value)
        except Exception as exc:  # any codec failure, e.g. a timestamp out of datetime's range
            return self._reject(message, Outcome.UNDECODABLE, repr(exc))
        if not isinstance(record, kind.record_type):
            detail = f"expected {kind.record_type.__name__}, got {type(record).__name__}"
            return self._reject(message, Outcome.WRONG_TYPE, detail)
        if from_future(record.fetched_at, datetime.now(UTC)):
            detail = f"fetched_at {record.fetched_at.isoformat()} is in the future"
            return self._reject(message, Outcome.FROM_FUTURE, detail)
        return record

    def failed(self, message: Message, exc: Exception) -> Outcome:
        """Log and count a message whose handling raised; the agent goes on with the next."""
        logger.error(
            "failed to handle input message; skipped",
            exc_info=exc,
            extra={
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "reason": Outcome.FAILED.value,
            },
        )
        self.metrics.skipped_messages.labels(message.topic, Outcome.FAILED.value).inc()
        return Outcome.FAILED

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
        return (
            ranking if isinstance(ranking, RankingSnapshot) else None,
            snapshot if isinstance(snapshot, PriceSnapshot) else None,
        )

    def _in_force(self, kind: SnapshotKind) -> Snapshot | None:
        raw = self.tables.latest.get(kind.value)
        if raw is None:
            return None
        cached = self._decoded.get(kind)
        if cached is not None and cached[0] == raw:
            return cached[1]
        try:
            snapshot = codec.decode_as(kind.record_type, raw)
        except Exception as exc:
            # Only bytes that decoded are stored, so only a codec change gets here.
            logger.warning(
                "stored snapshot no longer decodes; treating it as absent",
                extra={"kind": kind.value, "error": str(exc)},
            )
            return None
        self._decoded[kind] = (raw, snapshot)
        return snapshot

    def _store(
        self, kind: SnapshotKind, raw: bytes, snapshot: Snapshot, traced_by: SpanContext | None
    ) -> None:
        self.tables.latest[kind.value] = raw
        self._decoded[kind] = (raw, snapshot)
        self._traced_by[kind] = traced_by

    def _log_join(self, kind: SnapshotKind, result: JoinResult) -> None:
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
                "invalid_prices": list(report.invalid_prices),
            },
        )
