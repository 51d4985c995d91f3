"""The history reader's read loop: batches of one partition's records from an offset on.

The partition is assigned (and paused) on a group-less consumer; reading resumes it, seeks,
and pauses it again afterwards, so one consumer serves every question in turn. The end of
the partition is the high watermark of the fetch responses, never ListOffsets(latest),
which Tansu under-reports after a multi-record batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing

from aiokafka import AIOKafkaConsumer, TopicPartition

from topcoins.history.errors import HistoryReadError
from topcoins.history.raw_topics import RawRecord

__all__ = ["batches", "fetch"]

# How long one getmany waits for a fetch; the fetch itself waits ``fetch_max_wait_ms``.
_POLL_MS = 200


async def batches(
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    start: int,
    stop: int | None = None,
    *,
    timeout_s: float,
    where: str,
) -> AsyncGenerator[list[RawRecord], None]:
    """Record batches of ``tp`` from ``start`` to ``stop`` (exclusive) or to the current
    end; ``HistoryReadError`` once the broker gave nothing for ``timeout_s`` (``where``
    names the broker in the message). Close it (``aclosing``) when leaving early."""
    loop = asyncio.get_running_loop()
    consumer.resume(tp)
    consumer.seek(tp, start)
    deadline = loop.time() + timeout_s
    try:
        while stop is None or await consumer.position(tp) < stop:
            records = (await consumer.getmany(tp, timeout_ms=_POLL_MS)).get(tp)
            if records and stop is not None and records[-1].offset >= stop:
                if within := [record for record in records if record.offset < stop]:
                    yield within
                return
            if records:
                yield records
                deadline = loop.time() + timeout_s
                continue
            highwater = consumer.highwater(tp)
            if highwater is not None and await consumer.position(tp) >= highwater:
                return
            if loop.time() > deadline:
                raise HistoryReadError(
                    f"{tp.topic}[{tp.partition}] gave no records from offset "
                    f"{await consumer.position(tp)} within {timeout_s:.0f} s ({where})"
                )
    finally:
        consumer.pause(tp)


async def fetch(
    consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, *, timeout_s: float, where: str
) -> list[RawRecord]:
    """The records one fetch returns from ``offset`` on; [] if the partition ends first."""
    async with aclosing(batches(consumer, tp, offset, timeout_s=timeout_s, where=where)) as read:
        async for records in read:
            return records
    return []
