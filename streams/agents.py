"""The worker's agents: decode a snapshot, join, write the changed generation to the top topic.

One agent per input topic; both hand their messages to one ``TopListUpdater``, which runs
one message at a time (a lock), so the generations on the top topic never interleave.

For each accepted snapshot the updater writes, on the single-partition top topic and in
this order: every changed ``TopCoin`` row (key = symbol), a tombstone for every symbol that
left the list, then the ``TopListMeta`` (key ``_meta``). A reader that applies messages in
order and publishes its view at each meta therefore only sees complete generations. The
first generation after a start rewrites every row, changed or not: a worker killed in the
middle of a generation left rows of it on the topic that its recovered table does not know,
and a meta written over them would close a list mixing two generations (readers refuse
such a meta, ``schemas/generation.py``; rewriting the rows makes the next one whole). The
sends go through one Faust producer, are issued in order and awaited before the tables
change, so a crash never leaves a table ahead of the topic (except a snapshot stored from
a backlog, below: it is published once the worker has caught up).

Every message on the top topic carries the headers ``producer=stream-worker``,
``ranking_snapshot_id`` and ``pricing_snapshot_id`` (absent while no prices are known) of
its generation; a row also carries its ``match_rule``.

A message that is not a snapshot of the expected type is logged (topic, partition,
offset), counted in ``topcoins_worker_skipped_messages_total`` and skipped. A snapshot
older (by ``fetched_at``) than the one in force, or the same snapshot again, is skipped too,
and so is one fetched more than ``FUTURE_TOLERANCE`` ahead of the worker's clock: kept in
force, it would make every real snapshot after it look stale, for ever.

**Backlog collapse.** A worker that starts on a long backlog (a new consumer group reads
up to 7 days of snapshots) does not join and publish a generation for each old snapshot.
A snapshot that is not the last message available on its partition (``is_caught_up``:
its offset is below the partition's high watermark minus one, the watermark coming from
the consumer's latest fetch response) is only stored as the snapshot in force; the join
runs for the last one. The stored pair is *pending*: if the last message turns out to be
unusable (undecodable, stale, a repeat), the pending pair is joined and published then.
A worker starts pending, since its recovered tables may hold a pair it never published.
Counted in ``topcoins_worker_backlog_snapshots_total``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

import faust
from faust.types import TP, AgentT, StreamT, TopicT
from faust.types.tuples import Message

from topcoins.schemas import codec
from topcoins.schemas.records import PriceSnapshot, RankingSnapshot
from topcoins.schemas.stamps import FUTURE_TOLERANCE, from_future
from topcoins.schemas.topics import META_KEY
from topcoins.streams.aliases import AliasTable
from topcoins.streams.faults import KillAfterRows
from topcoins.streams.join import JoinResult, join_top_list
from topcoins.streams.metrics import WorkerMetrics
from topcoins.streams.progress import AgentProgress
from topcoins.streams.tables import SnapshotKind, WorkerTables
from topcoins.streams.topics import WorkerTopics
from topcoins.tracing import enabled as tracing_enabled
from topcoins.tracing import inject_headers, links_to, span_context_from_headers, start_span

if TYPE_CHECKING:
    from opentelemetry.trace import Link, SpanContext

__all__ = [
    "FUTURE_TOLERANCE",
    "PRODUCER",
    "Outcome",
    "TopListUpdater",
    "WorkerAgents",
    "generation_headers",
    "is_caught_up",
    "register_agents",
]

logger = logging.getLogger(__name__)

Snapshot = RankingSnapshot | PriceSnapshot

# The ``producer`` header of every message the worker writes to the top topic.
PRODUCER = "stream-worker"


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
        # The poll (publish span) that sent each snapshot in force, when traced: the join
        # span links to both.
        self._traced_by: dict[SnapshotKind, SpanContext | None] = {}
        # True while the snapshots in force may differ from the last published generation.
        self._pending = True
        # Rows live on the top topic when the worker started (see ``expect_rows``).
        self._rows_found_at_start: set[str] = set()
        # True until the first generation after the start is out: it rewrites every row.
        self._rewrite_all = True
        self._generations = 0  # generations this process started to publish
        # Test-only (``streams/faults.py``): die after some rows of one generation.
        self.fault: KillAfterRows | None = None

    def expect_rows(self, symbols: set[str]) -> None:
        """Rows found live on the top topic at start: the first generation tombstones those
        it does not list, even when a crash kept them out of the recovered table."""
        self._rows_found_at_start = set(symbols)

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
            await self._publish(result)
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

    async def _publish(self, result: JoinResult) -> None:
        """Write changed rows (all, the first time), then tombstones, then the meta; wait
        for all; then the table."""
        top_coins = self.tables.top_coins
        encoded = {row.symbol: (row, codec.encode(row)) for row in result.rows}
        changed = [
            (row, data)
            for row, data in encoded.values()
            if self._rewrite_all or top_coins.get(row.symbol) != data
        ]
        departed = sorted((set(top_coins.keys()) | self._rows_found_at_start) - encoded.keys())
        headers = inject_headers(generation_headers(result))  # + traceparent when traced
        self._generations += 1
        kill_after = self.fault.rows_before_exit(self._generations) if self.fault else None
        # Each ``send`` returns once the message is queued in the producer, so the queue
        # (and the single partition) holds them in this order; then wait for delivery.
        deliveries = []
        for row, data in changed[:kill_after]:
            deliveries.append(
                await self.top.send(
                    key=row.symbol,
                    value=data,
                    headers=[*headers, ("match_rule", row.match_rule.encode())],
                )
            )
        if kill_after is not None and self.fault is not None:
            await asyncio.gather(*deliveries)
            self.fault.exit()
        deliveries += [await self.top.send(key=s, value=None, headers=headers) for s in departed]
        deliveries.append(
            await self.top.send(key=META_KEY, value=codec.encode(result.meta), headers=headers)
        )
        await asyncio.gather(*deliveries)
        for row, data in changed:
            top_coins[row.symbol] = data
        for symbol in departed:
            top_coins.pop(symbol, None)
        self._rows_found_at_start.clear()
        self._rewrite_all = False
        self.metrics.rows_written.labels("row").inc(len(changed))
        self.metrics.rows_written.labels("tombstone").inc(len(departed))
        self.metrics.last_publish.set_to_current_time()

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


def generation_headers(result: JoinResult) -> list[tuple[str, bytes]]:
    """The headers every top-topic message of ``result``'s generation carries."""
    headers = [
        ("producer", PRODUCER.encode()),
        ("ranking_snapshot_id", result.meta.ranking_snapshot_id.encode()),
    ]
    if result.meta.pricing_snapshot_id is not None:
        headers.append(("pricing_snapshot_id", result.meta.pricing_snapshot_id.encode()))
    return headers


def is_caught_up(offset: int, highwater: int | None) -> bool:
    """True when the message at ``offset`` is the last one available on its partition.

    ``highwater`` is the partition's high watermark (the offset the next message will get)
    from the consumer's latest fetch response, None when unknown. Unknown counts as caught
    up: an extra join is harmless, a last snapshot left unjoined is not. A watermark that
    under-reports (Tansu's ListOffsets does after a multi-record batch; its fetch responses
    did not in our tests) only makes a message look *more* caught up, so the last message
    is always joined; ``- 1`` and not ``- 2``, so the one before it is not.
    """
    return highwater is None or offset >= highwater - 1


def register_agents(
    app: faust.App,
    topics: WorkerTopics,
    updater: TopListUpdater,
    progress: AgentProgress | None = None,
) -> WorkerAgents:
    """Attach one agent per input topic to ``app``; each yields an ``Outcome`` per message.

    ``progress`` hears of every message handled or failed (``streams/progress.py``)."""

    def caught_up(message: Message) -> bool:
        highwater = _highwater(app, message.tp)
        if highwater is not None:
            lag = max(0, highwater - message.offset - 1)
            updater.metrics.consumer_lag.labels(message.topic).set(lag)
        return is_caught_up(message.offset, highwater)

    async def handle(kind: SnapshotKind, message: Message, value: bytes | None) -> Outcome:
        # Whatever a message provokes is logged and counted here: left to Faust, the
        # agent would restart and the message would be committed unnoticed.
        try:
            outcome = await updater.apply(kind, message, value, caught_up=caught_up(message))
        except Exception as exc:
            if progress is not None:
                progress.failed(message, repr(exc))
            return updater.failed(message, exc)
        if progress is not None:
            progress.handled(message)
        return outcome

    async def process_ranks(stream: StreamT[bytes]) -> AsyncIterator[Outcome]:
        async for event in stream.events():
            yield await handle(SnapshotKind.RANKING, event.message, event.value)

    async def process_prices(stream: StreamT[bytes]) -> AsyncIterator[Outcome]:
        async for event in stream.events():
            yield await handle(SnapshotKind.PRICES, event.message, event.value)

    return WorkerAgents(
        ranks=app.agent(topics.ranks, name="process-ranks", concurrency=1)(process_ranks),
        prices=app.agent(topics.prices, name="process-prices", concurrency=1)(process_prices),
    )


def _highwater(app: faust.App, tp: TP) -> int | None:
    """The partition's high watermark as the consumer last fetched it, None if unknown."""
    try:
        return app.consumer.highwater(tp)
    except Exception:  # not started (test context), partition revoked mid-rebalance, ...
        return None
