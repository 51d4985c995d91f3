"""``TopicFollower``: reads every partition of one topic from the beginning, for ever.

It owns one ``AIOKafkaConsumer`` at a time, without a consumer group, and hands each
fetched batch to a callback. It

* waits for the topic to exist instead of assigning it (a metadata request for a missing
  topic would let the broker auto-create it with default settings);
* reconnects with capped exponential backoff after any failure, resuming after the last
  handled message (replaying from the beginning would briefly serve older data again);
* reports ``caught_up`` (once; it never turns false again) when its position has
  reached, on every partition, both the end offset the broker reported when the
  partitions were assigned (``ListOffsets``) and the high watermark of the latest fetch
  response. ``ListOffsets`` alone is not enough on Tansu, which under-reports it after
  multi-record batches (by one per batch: 147 for a 240-record log in one measurement)
  while its fetch high watermark is right. In case an offset is reported that never
  comes, ``idle_polls`` empty fetches in a row count as caught up too, so readiness never
  waits for ever;
* reports ``stuck_reason`` (None while healthy) when it keeps failing (``stuck_failures``
  failed attempts in a row, e.g. a handler that raises on a message, or an unreachable
  broker) or has not advanced for ``stuck_after_s`` although messages wait after its
  position. The handler is expected to skip what it cannot use, so a bad message never
  holds the follower back; ``stuck_reason`` is the alarm for when something still does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import TopicPartition

from topcoins.stuck import STUCK_AFTER_S, STUCK_FAILURES, stuck_reason

__all__ = ["BatchHandler", "ConsumerFactory", "Message", "TopicFollower"]

logger = logging.getLogger(__name__)

# How long one fetch call may block the follower's loop (not requests) when idle.
POLL_TIMEOUT_MS = 1000
_TOPIC_POLL_MAX_S = 5.0


class Message(Protocol):
    """What the followers read of aiokafka's ``ConsumerRecord``."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


BatchHandler = Callable[[Mapping[TopicPartition, Sequence[Message]]], None]
# ``factory(topic)``: a new, unstarted consumer for reading ``topic``.
ConsumerFactory = Callable[[str], Any]


class TopicFollower:
    """``await follower.run()`` feeds every message of ``topic`` to ``handle``, until cancelled."""

    def __init__(
        self,
        topic: str,
        partitions: int,
        handle: BatchHandler,
        consumer_factory: ConsumerFactory,
        *,
        created_by: str,
        retry_first_s: float,
        retry_max_s: float,
        idle_polls: int = 3,
        on_lag: Callable[[int], None] | None = None,
        stuck_failures: int = STUCK_FAILURES,
        stuck_after_s: float = STUCK_AFTER_S,
    ) -> None:
        self.topic = topic
        self.partitions = tuple(TopicPartition(topic, p) for p in range(partitions))
        self.handle = handle
        self.consumer_factory = consumer_factory
        self.created_by = created_by
        self.retry_first_s = retry_first_s
        self.retry_max_s = retry_max_s
        self.idle_polls = idle_polls
        self.on_lag = on_lag
        self.stuck_failures = stuck_failures
        self.stuck_after_s = stuck_after_s
        self.failures = 0  # failed attempts in a row (connect, fetch or handler)
        self.last_error: str | None = None
        self.running = False
        self.caught_up = False
        self.lag: int | None = None
        self.next_offsets: dict[TopicPartition, int] = {}
        self._end_offsets: dict[TopicPartition, int] = {}
        self._idle = 0
        self._positions: dict[TopicPartition, int] = {}
        self._stalled_since: float | None = None

    @property
    def stuck_reason(self) -> str | None:
        """Why the follower counts as stuck, or None while it is healthy (``topcoins.stuck``)."""
        stalled_for = None
        if self._stalled_since is not None:
            stalled_for = time.monotonic() - self._stalled_since
        return stuck_reason(
            failures=self.failures,
            last_error=self.last_error,
            stalled_for=stalled_for,
            positions=_offsets(self._positions),
            stuck_failures=self.stuck_failures,
            stuck_after_s=self.stuck_after_s,
        )

    async def run(self) -> None:
        """Consume for ever, reconnecting after failures; cancel the task to stop."""
        delay = self.retry_first_s
        while True:
            consumer = self.consumer_factory(self.topic)
            try:
                await consumer.start()
                await self._wait_for_topic(consumer)
                consumer.assign(list(self.partitions))
                await self._seek(consumer)
                if not self.caught_up:
                    self._end_offsets = dict(await consumer.end_offsets(list(self.partitions)))
                    self._idle = 0
                self.running = True
                delay = self.retry_first_s
                logger.info(
                    "consuming",
                    extra={"topic": self.topic, "end_offsets": _offsets(self._end_offsets)},
                )
                while True:
                    batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
                    self._apply(batches)
                    self.failures = 0
                    self._update_lag(consumer)
                    await self._check_progress(consumer)
                    if not self.caught_up:
                        await self._check_caught_up(consumer, fetched=bool(batches))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                self.last_error = repr(exc)[:500]
                logger.warning(
                    "consumer failed; keeping what was read and retrying",
                    extra={
                        "topic": self.topic,
                        "reason": f"{type(exc).__name__}: {exc}",
                        "retry_in_s": delay,
                        "failures": self.failures,
                    },
                )
                logger.debug("consumer failure traceback", exc_info=exc)
            finally:
                self.running = False
                await _stop_quietly(consumer)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max_s)

    def _apply(self, batches: Mapping[TopicPartition, Sequence[Message]]) -> None:
        if not batches:
            return
        self.handle(batches)
        for tp, messages in batches.items():
            if messages:
                self.next_offsets[tp] = messages[-1].offset + 1

    async def _wait_for_topic(self, consumer: Any) -> None:
        delay = self.retry_first_s
        while self.topic not in await consumer.topics():
            if delay == self.retry_first_s:
                logger.warning(
                    f"waiting for the topic to be created by the {self.created_by}",
                    extra={"topic": self.topic},
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _TOPIC_POLL_MAX_S, self.retry_max_s)

    async def _seek(self, consumer: Any) -> None:
        fresh = [tp for tp in self.partitions if tp not in self.next_offsets]
        for tp, offset in self.next_offsets.items():
            consumer.seek(tp, offset)
        if fresh:
            await consumer.seek_to_beginning(*fresh)

    async def _check_caught_up(self, consumer: Any, *, fetched: bool) -> None:
        self._idle = 0 if fetched else self._idle + 1
        positions = {tp: await consumer.position(tp) for tp in self.partitions}
        highwaters = {tp: consumer.highwater(tp) for tp in self.partitions}
        reached = all(
            positions[tp] >= self._end_offsets.get(tp, 0)
            and highwaters[tp] is not None
            and positions[tp] >= highwaters[tp]
            for tp in self.partitions
        )
        if not reached and self._idle < self.idle_polls:
            return
        self.caught_up = True
        where = {
            "topic": self.topic,
            "positions": _offsets(positions),
            "end_offsets": _offsets(self._end_offsets),
            "highwaters": {tp.partition: hw for tp, hw in highwaters.items()},
        }
        if reached:
            logger.info("caught up with the end of the topic", extra=where)
        else:
            logger.warning(
                f"no new messages for {self.idle_polls} fetches although the reported end "
                "offsets were not reached; treating the topic as read to its end",
                extra=where,
            )

    async def _check_progress(self, consumer: Any) -> None:
        """Note since when the position has not moved while messages wait after it."""
        positions = {tp: await consumer.position(tp) for tp in self.partitions}
        waiting = any(
            (highwater := consumer.highwater(tp)) is not None and positions[tp] < highwater
            for tp in self.partitions
        )
        if not waiting or positions != self._positions:
            self._stalled_since = None
        elif self._stalled_since is None:
            self._stalled_since = time.monotonic()
        self._positions = positions

    def _update_lag(self, consumer: Any) -> None:
        lag = 0
        for tp in self.partitions:
            highwater = consumer.highwater(tp)
            if highwater is None:
                return
            lag += max(0, highwater - self.next_offsets.get(tp, 0))
        self.lag = lag
        if self.on_lag is not None:
            self.on_lag(lag)


def _offsets(offsets: Mapping[TopicPartition, int]) -> dict[int, int]:
    return {tp.partition: offset for tp, offset in offsets.items()}


async def _stop_quietly(consumer: Any) -> None:
    try:
        await consumer.stop()
    except Exception as exc:
        logger.warning("closing the Kafka consumer failed", exc_info=exc)
