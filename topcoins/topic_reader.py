"""``TopicReader``: reads every partition of one topic from the beginning, for ever.

The one group-less Kafka reader of topcoins (the web replica's top and status topics, the
pricing producer's ranked ids). It owns one ``AIOKafkaConsumer`` at a time, without a
consumer group, and hands each fetched batch to a callback. It

* waits for the topic to exist instead of assigning it (``wait_for_topic``: a metadata
  request for a missing topic would let the broker auto-create it with default settings);
* reconnects with capped exponential backoff after any failure, resuming after the last
  handled message (``seek_after``: replaying from the beginning would briefly serve older
  data again);
* reports ``caught_up`` (once; it never turns false again) when its position has
  reached, on every partition, both the end offset the broker reported when the
  partitions were assigned (``ListOffsets``) and the high watermark of the latest fetch
  response. ``ListOffsets`` alone is not enough on Tansu, which under-reports it after
  multi-record batches (by one per batch: 147 for a 240-record log in one measurement)
  while its fetch high watermark is right. In case an offset is reported that never
  comes, ``idle_polls`` empty fetches in a row count as caught up too, so readiness never
  waits for ever;
* reports ``stuck_reason`` (None while healthy, ``topcoins.stuck``) when it keeps failing
  (e.g. a handler that raises on a message, or an unreachable broker) or has not advanced
  although messages wait after its position. The handler is expected to skip what it
  cannot use (``skip_unusable``; such a message raises ``UnusableMessage``), so a bad
  message never holds the reader back; ``stuck_reason`` is the alarm for when something
  still does.

``group_less_consumer`` builds the consumer such readers use (the history reader's
random-access one too, ``topcoins.history.connection``); ``stop_quietly`` closes one
without masking the error that made the reader give it up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, InitVar, dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from topcoins.lifecycle import AsyncLifecycle
from topcoins.stuck import STUCK_AFTER_S, STUCK_FAILURES, ProgressWatch

__all__ = [
    "BatchHandler",
    "Batches",
    "ConsumerFactory",
    "Message",
    "TopicReader",
    "UnusableMessage",
    "group_less_consumer",
    "key_text",
    "seek_after",
    "skip_unusable",
    "stop_quietly",
    "wait_for_topic",
    "where",
]

logger = logging.getLogger(__name__)

# How long one fetch call may block the reader's loop (not requests) when idle.
POLL_TIMEOUT_MS = 1000
_TOPIC_POLL_MAX_S = 5.0


class UnusableMessage(ValueError):
    """A message that does not decode or breaks its topic's contract; readers skip it."""


class Message(Protocol):
    """What the readers read of aiokafka's ``ConsumerRecord``."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


Batches = Mapping[TopicPartition, Sequence[Message]]
BatchHandler = Callable[[Batches], None]
# ``factory()``: a new, unstarted consumer.
ConsumerFactory = Callable[[], Any]


def group_less_consumer(
    bootstrap_servers: str | Sequence[str],
    client_id: str,
    client_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> AIOKafkaConsumer:
    """A consumer without a group (no group offsets or assignment to disturb), reading from
    the beginning; ``client_options`` are the security options (``kafka_client_options``),
    ``options`` any further ``AIOKafkaConsumer`` arguments."""
    return AIOKafkaConsumer(
        **(client_options or {}),
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id=client_id,
        **options,
    )


async def wait_for_topic(
    consumer: Any, topic: str, *, created_by: str, first_s: float, max_s: float
) -> None:
    """Poll the topic list (backing off from ``first_s`` to ``max_s``, at most 5 s) until
    ``topic`` exists; never assign it before: that could auto-create it."""
    delay = first_s
    while topic not in await consumer.topics():
        if delay == first_s:
            logger.warning(
                f"waiting for the topic to be created by the {created_by}", extra={"topic": topic}
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, _TOPIC_POLL_MAX_S, max_s)


async def seek_after(
    consumer: Any, partitions: Iterable[TopicPartition], next_offsets: Mapping[TopicPartition, int]
) -> None:
    """Seek each partition to its next offset, those without one to the beginning."""
    fresh = [tp for tp in partitions if tp not in next_offsets]
    for tp, offset in next_offsets.items():
        consumer.seek(tp, offset)
    if fresh:
        await consumer.seek_to_beginning(*fresh)


def skip_unusable(
    batches: Batches,
    apply: Callable[[Message], object],
    skipped: Callable[[Message, Exception], None],
) -> None:
    """``apply`` each message in order; one that raises goes to ``skipped`` and the next
    one is applied (whatever a message provokes, it never stops the reader)."""
    for messages in batches.values():
        for message in messages:
            try:
                apply(message)
            except Exception as exc:
                skipped(message, exc)


def key_text(key: bytes | str | None, *, topic: str, keyed_by: str) -> str:
    """A message key as text; ``UnusableMessage`` when there is none or it is not UTF-8."""
    if key is None:
        raise UnusableMessage(f"message without a key; the {topic} topic is keyed by {keyed_by}")
    if isinstance(key, str):
        return key
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnusableMessage(f"key {key!r} is not UTF-8") from exc


def where(message: Message) -> dict[str, object]:
    """A message's topic, partition and offset, as log fields."""
    return {"topic": message.topic, "partition": message.partition, "offset": message.offset}


async def stop_quietly(consumer: Any) -> None:
    """Close ``consumer``; a failure is logged, never raised (it would mask the first error)."""
    try:
        await consumer.stop()
    except Exception as exc:
        logger.warning("closing the Kafka consumer failed", exc_info=exc)


@dataclass(eq=False)
class TopicReader(AsyncLifecycle):
    """``async with TopicReader(...)`` feeds every message of ``topic`` (its partitions 0 to
    ``partition_count - 1``) to ``handle`` in the background; ``run()`` does it in the
    caller's task, until cancelled. ``keeps`` says what a failure leaves in place, for its
    log line."""

    topic: str
    partition_count: int
    handle: BatchHandler
    consumer_factory: ConsumerFactory
    _: KW_ONLY
    created_by: str
    retry_first_s: float
    retry_max_s: float
    idle_polls: int = 3
    on_lag: Callable[[int], None] | None = None
    stuck_failures: InitVar[int] = STUCK_FAILURES
    stuck_after_s: InitVar[float] = STUCK_AFTER_S
    keeps: str = "keeping what was read"
    running: bool = field(default=False, init=False)
    caught_up: bool = field(default=False, init=False)
    lag: int | None = field(default=None, init=False)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict, init=False)
    _end_offsets: dict[TopicPartition, int] = field(default_factory=dict, init=False)
    _idle: int = field(default=0, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self, stuck_failures: int, stuck_after_s: float) -> None:
        self.partitions = tuple(TopicPartition(self.topic, p) for p in range(self.partition_count))
        self.progress = ProgressWatch(stuck_failures=stuck_failures, stuck_after_s=stuck_after_s)

    @property
    def failures(self) -> int:
        """Failed attempts in a row (connect, fetch or handler)."""
        return self.progress.failures

    @property
    def stuck_reason(self) -> str | None:
        """Why the reader counts as stuck, or None while it is healthy (``topcoins.stuck``)."""
        return self.progress.reason

    async def _start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"read:{self.topic}")

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def run(self) -> None:
        """Consume for ever, reconnecting after failures; cancel the task to stop."""
        delay = self.retry_first_s
        while True:
            consumer = self.consumer_factory()
            try:
                await consumer.start()
                await wait_for_topic(
                    consumer,
                    self.topic,
                    created_by=self.created_by,
                    first_s=self.retry_first_s,
                    max_s=self.retry_max_s,
                )
                consumer.assign(list(self.partitions))
                await seek_after(consumer, self.partitions, self.next_offsets)
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
                    self.progress.succeeded()
                    self._update_lag(consumer)
                    await self._check_progress(consumer)
                    if not self.caught_up:
                        await self._check_caught_up(consumer, fetched=bool(batches))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.progress.failed(repr(exc))
                logger.warning(
                    f"consumer failed; {self.keeps} and retrying",
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
                await stop_quietly(consumer)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max_s)

    def _apply(self, batches: Batches) -> None:
        if not batches:
            return
        self.handle(batches)
        for tp, messages in batches.items():
            if messages:
                self.next_offsets[tp] = messages[-1].offset + 1

    async def _positions(self, consumer: Any) -> dict[TopicPartition, int]:
        return {tp: await consumer.position(tp) for tp in self.partitions}

    async def _check_caught_up(self, consumer: Any, *, fetched: bool) -> None:
        self._idle = 0 if fetched else self._idle + 1
        positions = await self._positions(consumer)
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
        fields = {
            "topic": self.topic,
            "positions": _offsets(positions),
            "end_offsets": _offsets(self._end_offsets),
            "highwaters": {tp.partition: hw for tp, hw in highwaters.items()},
        }
        if reached:
            logger.info("caught up with the end of the topic", extra=fields)
        else:
            logger.warning(
                f"no new messages for {self.idle_polls} fetches although the reported end "
                "offsets were not reached; treating the topic as read to its end",
                extra=fields,
            )

    async def _check_progress(self, consumer: Any) -> None:
        """Note whether the position moved while messages wait after it."""
        positions = await self._positions(consumer)
        waiting = any(
            (highwater := consumer.highwater(tp)) is not None and positions[tp] < highwater
            for tp in self.partitions
        )
        self.progress.observe(_offsets(positions), waiting=waiting)

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
