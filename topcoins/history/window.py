"""The raw messages of a replay window, as entries of the fold (``topcoins.domain.fold``).

A window's first and last offsets are found by time (``Locator``); the messages between
are read without decoding: the fold needs only their timestamp, offset and ``snapshot_id``
header, and a ``schema`` header naming another record type marks one to skip.
"""

from __future__ import annotations

from contextlib import aclosing

from topcoins.domain import FoldEntry
from topcoins.history.connection import Connection
from topcoins.history.locate import Locator
from topcoins.history.raw_topics import RawTopic, header, snapshot_id

__all__ = ["window_entries"]


async def window_entries(
    connection: Connection,
    locator: Locator,
    topic: RawTopic,
    since_ms: int | None,
    until_ms: int | None,
) -> tuple[list[FoldEntry], int]:
    """Every message of ``topic`` from ``since_ms`` to ``until_ms`` (both inclusive; None:
    the oldest retained, the current end), as fold entries; and how many had the wrong
    record type (by their ``schema`` header)."""
    tp = await connection.partition(topic)
    start = await connection.begin(tp)
    if since_ms is not None:
        before = (await locator.find(topic, since_ms - 1)).record
        start = before.offset + 1 if before is not None else start
    stop: int | None = None
    if until_ms is not None:
        last = (await locator.find(topic, until_ms)).record
        if last is None or last.offset < start:
            return [], 0
        stop = last.offset + 1
    entries: list[FoldEntry] = []
    wrong_type = 0
    async with aclosing(connection.batches(tp, start, stop)) as batches:
        async for records in batches:
            for record in records:
                if since_ms is not None and record.timestamp < since_ms:
                    continue
                if until_ms is not None and record.timestamp > until_ms:
                    continue
                schema = header(record, "schema")
                if schema is not None and schema != topic.record_type.__name__:
                    wrong_type += 1
                    continue
                entries.append(
                    FoldEntry(record.timestamp, record.topic, record.offset, snapshot_id(record))
                )
    return entries, wrong_type
