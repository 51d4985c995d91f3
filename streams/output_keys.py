"""Which rows are live on the top topic: the worker's view of its own published output.

A worker killed in the middle of a generation may have written rows that its recovered
``top-coins`` table does not know (the table changes only after a whole generation is
delivered). Reading the compacted top topic once at start-up finds those rows, so the
first generation after the restart tombstones any that are no longer ranked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from topcoins.schemas.topics import META_KEY

__all__ = ["live_row_keys"]

IDLE_FETCHES_AT_END = 2  # Tansu can under-report the end offset; an idle fetch confirms it


async def live_row_keys(
    bootstrap_servers: str,
    topic: str,
    *,
    timeout: float = 30.0,
    partition: int = 0,
    client_options: Mapping[str, Any] | None = None,
) -> set[str]:
    """Keys of the rows whose latest message on ``topic`` is not a tombstone.

    ``client_options`` are the security options (``kafka_client_options``).
    """
    consumer = AIOKafkaConsumer(
        **(client_options or {}),
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        client_id="topcoins-worker-output-keys",
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        live: set[str] = set()
        idle = 0
        async with asyncio.timeout(timeout):
            while True:
                batch = (await consumer.getmany(tp, timeout_ms=200)).get(tp, [])
                for message in batch:
                    key = message.key.decode("utf-8", "replace") if message.key else ""
                    if not key or key == META_KEY:
                        continue
                    if message.value is None:
                        live.discard(key)
                    else:
                        live.add(key)
                idle = 0 if batch else idle + 1
                position = await consumer.position(tp)
                highwater = consumer.highwater(tp) or 0
                if position >= max(end, highwater) and idle >= IDLE_FETCHES_AT_END:
                    return live
    finally:
        await consumer.stop()
