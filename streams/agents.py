"""The worker's agents: decode a snapshot, join, write the changed generation to the top topic.

One agent per input topic; both hand their messages to one ``TopListUpdater``, which runs
one message at a time (a lock), so the generations on the top topic never interleave.

For each accepted snapshot the updater writes, on the single-partition top topic and in
this order: every changed ``TopCoin`` row (key = symbol), a tombstone for every symbol that
left the list, then the ``TopListMeta`` (key ``_meta``). A reader that applies messages in
order and publishes its view at each meta therefore only sees complete generations. The
sends go through one Faust producer, are issued in order and awaited before the tables
change, so a crash never leaves a table ahead of the topic (except a snapshot stored from
a backlog, below: it is published once the worker has caught up).

Every message on the top topic carries the headers ``producer=stream-worker``,
``ranking_snapshot_id`` and ``pricing_snapshot_id`` (absent while no prices are known) of
its generation; a row also carries its ``match_rule``.

A message that is not a snapshot of the expected type is logged (topic, partition,
offset), counted in ``topcoins_worker_skipped_messages_total`` and skipped. A snapshot
older (by ``fetched_at``) than the one in force, or the same snapshot again, is skipped too.

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
from enum import StrEnum

import faust
from faust.types import TP, AgentT, StreamT, TopicT
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

__all__ = [
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
        # True while the snapshots in force may differ from the last published generation.
        self._pending = True
        # Rows live on the top topic when the worker started (see ``expect_rows``).
        self._rows_found_at_start: set[str] = set()

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
            ranking, prices = self._join_inputs(snapshot)
            if not caught_up or ranking is None:
                self._store(kind, value, snapshot)
                self._pending = True
                if not caught_up:
                    self.metrics.backlog_snapshots.inc()
                    return Outcome.BACKLOG
                logger.info(
                    "price snapshot stored; waiting for a ranking",
                    extra={"snapshot_id": snapshot.snapshot_id},
                )
                return Outcome.STORED
            await self._publish_join(kind, ranking, prices)
            self._store(kind, value, snapshot)
            return Outcome.PUBLISHED

    async def _publish_in_force(self, trigger: SnapshotKind) -> None:
        """Join and publish the snapshots in force (the pending pair), if there is a ranking."""
        ranking = self._in_force(SnapshotKind.RANKING)
        if isinstance(ranking, RankingSnapshot):
            prices = self._in_force(SnapshotKind.PRICES)
            await self._publish_join(
                trigger, ranking, prices if isinstance(prices, PriceSnapshot) else None
            )

    async def _publish_join(
        self, trigger: SnapshotKind, ranking: RankingSnapshot, prices: PriceSnapshot | None
    ) -> None:
        """Join one pair and publish the generation; no longer pending once it is out."""
        started = time.perf_counter()
        result = join_top_list(ranking, prices, self.aliases)
        self.metrics.join_seconds.observe(time.perf_counter() - started)
        await self._publish(result)
        self._pending = False
        self.metrics.joins.inc()
        self.metrics.unmatched_assets.set(result.meta.unmatched)
        self._log_join(trigger, result)

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
        encoded = {row.symbol: (row, codec.encode(row)) for row in result.rows}
        changed = [
            (row, data) for row, data in encoded.values() if top_coins.get(row.symbol) != data
        ]
        departed = sorted((set(top_coins.keys()) | self._rows_found_at_start) - encoded.keys())
        headers = generation_headers(result)
        # Each ``send`` returns once the message is queued in the producer, so the queue
        # (and the single partition) holds them in this order; then wait for delivery.
        deliveries = [
            await self.top.send(
                key=row.symbol,
                value=data,
                headers=[*headers, ("match_rule", row.match_rule.encode())],
            )
            for row, data in changed
        ]
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
        self.metrics.rows_written.labels("row").inc(len(changed))
        self.metrics.rows_written.labels("tombstone").inc(len(departed))

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


def register_agents(app: faust.App, topics: WorkerTopics, updater: TopListUpdater) -> WorkerAgents:
    """Attach one agent per input topic to ``app``; each yields an ``Outcome`` per message."""

    def caught_up(message: Message) -> bool:
        return is_caught_up(message.offset, _highwater(app, message.tp))

    async def process_ranks(stream: StreamT[bytes]) -> AsyncIterator[Outcome]:
        async for event in stream.events():
            message = event.message
            yield await updater.apply(
                SnapshotKind.RANKING, message, event.value, caught_up=caught_up(message)
            )

    async def process_prices(stream: StreamT[bytes]) -> AsyncIterator[Outcome]:
        async for event in stream.events():
            message = event.message
            yield await updater.apply(
                SnapshotKind.PRICES, message, event.value, caught_up=caught_up(message)
            )

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
