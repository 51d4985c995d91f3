"""Decoding raw snapshots for the history reader, and walking past those it cannot serve.

A snapshot is decoded only when chosen (a 700-quote price snapshot takes ~40 ms to decode,
the join ~7 ms). ``decode_and_join`` is a pure function of its arguments, so the web runs
it in a worker process (``web/offload.py``); ``Decoder`` decodes single records in the
reader's process and keeps the last few.

**Snapshots from the future.** A snapshot whose ``fetched_at`` is more than 5 minutes
ahead of the reader's clock is walked past like an unreadable message (logged with topic,
partition and offset, counted as ``from_future``): the worker skips it with the same rule
(``schemas/stamps.py``), so no list it served was ever built from it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from topcoins.domain import AliasTable, JoinResult, join_top_list
from topcoins.formats import iso_utc
from topcoins.history.caches import JoinKey, LruCache, Present, join_key
from topcoins.history.raw_topics import RawRecord, RawTopic
from topcoins.history.stats import HistoryStats
from topcoins.schemas import codec
from topcoins.schemas.records import PriceSnapshot, RankingSnapshot, Snapshot
from topcoins.schemas.stamps import FUTURE_TOLERANCE, from_future
from topcoins.topic_reader import where

__all__ = [
    "FROM_FUTURE",
    "UNDECODABLE",
    "Decoder",
    "Joined",
    "Offload",
    "decode_and_join",
    "decode_join_and_present",
    "inline",
    "joined",
    "skip_reason",
]

logger = logging.getLogger(__name__)

# Runs ``decode_and_join`` with its arguments somewhere (inline, a process pool).
Offload = Callable[..., Awaitable[Any]]

# Why a raw message was walked past (``HistoryStats.skipped_by_reason``).
UNDECODABLE = "undecodable"
FROM_FUTURE = "from_future"

_DECODED_CACHE_SIZE = 8


def decode_and_join(
    ranking: bytes, prices: bytes | None, aliases: AliasTable, now: datetime | None = None
) -> JoinResult | tuple[Literal["ranking", "price"], str]:
    """Decode a raw ranking and price message and join them; or, when one does not
    decode (or, given ``now``, is from the future), which one (``"ranking"`` or
    ``"price"``) and why. A pure function of its arguments, so it can run in another
    process."""
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


def joined(result: JoinResult) -> JoinResult:
    """The joined list itself: what ``HistoryReader.top_list_at`` presents."""
    return result


@dataclass(frozen=True, slots=True)
class Joined:
    """What ``decode_join_and_present`` made of two snapshots that decoded."""

    key: JoinKey  # the ids of the two snapshots
    value: Any  # ``present(join)``


def decode_join_and_present(
    ranking: bytes,
    prices: bytes | None,
    aliases: AliasTable,
    now: datetime | None,
    present: Present,
) -> Joined | tuple[Literal["ranking", "price"], str]:
    """``decode_and_join``, then ``present`` applied to the join (in the same process, so
    a worker process can hand back something smaller than the join)."""
    outcome = decode_and_join(ranking, prices, aliases, now)
    if isinstance(outcome, JoinResult):
        return Joined(join_key(outcome), present(outcome))
    return outcome


def skip_reason(error: str) -> str:
    """The reason a ``decode_and_join`` error names: ``from_future`` or ``undecodable``."""
    return FROM_FUTURE if error.startswith(f"{FROM_FUTURE}:") else UNDECODABLE


async def inline(function: Callable[..., Any], *args: Any) -> Any:
    """The default ``Offload``: run ``function(*args)`` right here."""
    return function(*args)


class Decoder:
    """Decodes raw records (keeping the last few by position), walking past those that do
    not decode or are from the future: logged, and counted in ``stats``."""

    def __init__(self, clock: Callable[[], datetime], stats: HistoryStats) -> None:
        self._clock = clock
        self._stats = stats
        self._decoded: LruCache[tuple[str, int], Snapshot | None] = LruCache(_DECODED_CACHE_SIZE)

    def decode(self, topic: RawTopic, record: RawRecord) -> Snapshot | None:
        """The record's snapshot, or None when it is not a servable one of the topic's type."""
        key = (topic.name, record.offset)
        if key in self._decoded:
            return self._decoded[key]
        snapshot: Snapshot | None
        try:
            snapshot = codec.decode_as(topic.record_type, record.value)
        except Exception as exc:  # any codec failure, e.g. a timestamp out of datetime's range
            self.skip(record, UNDECODABLE, repr(exc))
            snapshot = None
        if snapshot is not None and (future := _future_error(snapshot, self._clock())):
            self.skip(record, FROM_FUTURE, future)
            snapshot = None
        return self._decoded.put(key, snapshot)

    def skip(self, record: RawRecord, reason: str, error: str) -> None:
        """Log and count a raw message walked past."""
        self._stats.skipped(reason)
        logger.warning(
            "skipped unreadable raw message",
            extra={**where(record), "reason": reason, "error": error},
        )


def _future_error(snapshot: Snapshot, now: datetime) -> str | None:
    """Why ``snapshot`` is skipped as from the future (``schemas/stamps.py``), else None."""
    if not from_future(snapshot.fetched_at, now):
        return None
    return (
        f"{FROM_FUTURE}: fetched_at {iso_utc(snapshot.fetched_at)} is more than "
        f"{FUTURE_TOLERANCE} ahead of the reader's clock ({iso_utc(now)})"
    )
