"""Writes each generation of the list to the top topic, and keeps the ``top_coins`` table.

A generation is written on the single-partition top topic in this order: every changed
``TopCoin`` row (key = symbol), a tombstone for every symbol that left the list, then the
``TopListMeta`` (key ``_meta``). A reader that applies messages in order and publishes its
view at each meta therefore only sees complete generations. The first generation after a
start rewrites every row, changed or not: a worker killed in the middle of a generation
left rows of it on the topic that its recovered table does not know, and a meta written
over them would close a list mixing two generations (readers refuse such a meta,
``schemas/generation.py``; rewriting the rows makes the next one whole). The sends go
through one Faust producer, are issued in order and awaited before the table changes, so a
crash never leaves the table ahead of the topic.

Every message on the top topic carries the headers ``producer=stream-worker``,
``ranking_snapshot_id`` and ``pricing_snapshot_id`` (absent while no prices are known) of
its generation; a row also carries its ``match_rule``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Protocol

from faust.types import RecordMetadata, TableT, TopicT

from topcoins.domain import JoinResult
from topcoins.schemas import codec
from topcoins.schemas.topics import META_KEY
from topcoins.streams.faults import Fault
from topcoins.streams.metrics import WorkerMetrics
from topcoins.tracing import inject_headers

__all__ = ["PRODUCER", "DirectSend", "GenerationWriter", "TopSender", "generation_headers"]

logger = logging.getLogger(__name__)

# The ``producer`` header of every message the worker writes to the top topic.
PRODUCER = "stream-worker"


class TopSender(Protocol):
    """What the writer needs of the top topic: queue a message, await its delivery later."""

    async def send(
        self, *, key: str, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> Awaitable[object]:
        """Queue one message; the result resolves once it is acknowledged."""
        ...


class DirectSend:
    """``top.send(key=, value=, headers=)`` straight to the app's producer, without Faust's
    per-message machinery (codecs, sensors, future messages): the rows are bytes already
    and a generation is up to ``RANKING_DEPTH`` of them (``benchmarks/freshness.py``)."""

    def __init__(self, top: TopicT) -> None:
        self.top = top

    async def send(
        self, *, key: str, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> Awaitable[RecordMetadata]:
        """Queue one message in the producer; the result resolves once it is acknowledged."""
        return await self.top.app.producer.send(
            self.top.get_topic_name(), key.encode(), value, None, None, headers
        )


class GenerationWriter:
    """Writes generations to ``top`` and mirrors the rows in ``top_coins`` (symbol -> bytes)."""

    def __init__(self, top: TopSender, top_coins: TableT, metrics: WorkerMetrics) -> None:
        self.top = top
        self.top_coins = top_coins
        self.metrics = metrics
        # Rows live on the top topic when the worker started (see ``expect_rows``).
        self._rows_found_at_start: set[str] = set()
        # True until the first generation after the start is out: it rewrites every row.
        self._rewrite_all = True
        self._generations = 0  # generations this process started to publish
        # Test-only (``streams/faults.py``): die after some rows of one generation.
        self.fault: Fault | None = None

    def expect_rows(self, symbols: set[str]) -> None:
        """Rows found live on the top topic at start: the first generation tombstones those
        it does not list, even when a crash kept them out of the recovered table."""
        self._rows_found_at_start = set(symbols)

    async def write(self, result: JoinResult) -> None:
        """Write changed rows (all, the first time), then tombstones, then the meta; wait
        for all; then the table."""
        top_coins = self.top_coins
        encoded = {row.symbol: (row, codec.encode(row)) for row in result.rows}
        changed = [
            (row, data)
            for row, data in encoded.values()
            if self._rewrite_all or top_coins.get(row.symbol) != data
        ]
        departed = sorted((set(top_coins.keys()) | self._rows_found_at_start) - encoded.keys())
        headers = inject_headers(generation_headers(result))  # + traceparent when traced
        self._generations += 1
        kill_after = (
            self.fault.rows_before_exit(self._generations, [row.symbol for row, _ in changed])
            if self.fault
            else None
        )
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


def generation_headers(result: JoinResult) -> list[tuple[str, bytes]]:
    """The headers every top-topic message of ``result``'s generation carries."""
    headers = [
        ("producer", PRODUCER.encode()),
        ("ranking_snapshot_id", result.meta.ranking_snapshot_id.encode()),
    ]
    if result.meta.pricing_snapshot_id is not None:
        headers.append(("pricing_snapshot_id", result.meta.pricing_snapshot_id.encode()))
    return headers
