"""An in-process replica of the top topic: the latest complete ``TopListView``.

``TopListReplica`` owns an ``AIOKafkaConsumer`` without a consumer group, assigned to the
top topic's partitions and reading from the beginning, so every web process rebuilds the
whole (compacted) list on its own. Messages go through a ``TopListBuilder``; a message
that cannot be applied is logged with its topic, partition and offset, counted and
skipped. Requests only ever read ``replica.view``: they never wait on Kafka, and when the
broker goes away the last view keeps being served while the consumer reconnects.

``StaticReplica`` serves fixed views from memory (tests, benchmarks).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from aiokafka import AIOKafkaConsumer, TopicPartition

from topcoins.schemas.topics import Topics
from topcoins.settings import Settings
from topcoins.web.errors import IncompleteGeneration, ReplicaError
from topcoins.web.view import TopListBuilder, TopListView

__all__ = [
    "Replica",
    "ReplicaStats",
    "StaticReplica",
    "TopListReplica",
    "ViewHolder",
]

logger = logging.getLogger(__name__)

# How long one fetch call may block the replica's loop (not requests) when idle.
_POLL_TIMEOUT_MS = 1000
_RETRY_FIRST_S = 0.5
_RETRY_MAX_S = 30.0
_TOPIC_POLL_MAX_S = 5.0


@dataclass
class ReplicaStats:
    """What the replica has done so far; read by ``/metrics`` at scrape time."""

    messages_applied: int = 0
    skipped_messages: int = 0
    generations: int = 0
    incomplete_generations: int = 0
    lag: int | None = None
    last_generation_at: float | None = None


class Replica(Protocol):
    """What the web app needs from a replica."""

    stats: ReplicaStats

    @property
    def view(self) -> TopListView | None:
        """The latest complete view, or None before the first one."""
        ...

    @property
    def running(self) -> bool:
        """True while the replica is receiving updates."""
        ...

    async def wait_for_view(self, after: TopListView | None = None) -> TopListView:
        """Return the first view newer than ``after`` (or the current one if ``after`` is None)."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class ViewHolder:
    """The current view plus a way to wait for the next one (for streaming endpoints)."""

    def __init__(self, stats: ReplicaStats) -> None:
        self.stats = stats
        self.view: TopListView | None = None
        self._changed = asyncio.Event()

    def publish(self, view: TopListView) -> None:
        """Make ``view`` the served one and wake every waiter."""
        self.view = view
        self.stats.last_generation_at = time.time()
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for_view(self, after: TopListView | None = None) -> TopListView:
        """The first view that is not ``after`` (the current one if ``after`` is None)."""
        while self.view is None or self.view is after:
            await self._changed.wait()
        return self.view


class _State(enum.Enum):
    NEW = "new"
    STARTED = "started"
    STOPPED = "stopped"


class StaticReplica:
    """A replica that serves the views it is given; ``publish`` swaps in a new one."""

    def __init__(self, view: TopListView | None = None, *, running: bool = True) -> None:
        self.stats = ReplicaStats()
        self._holder = ViewHolder(self.stats)
        self._running = running
        if view is not None:
            self.publish(view)

    @property
    def view(self) -> TopListView | None:
        return self._holder.view

    @property
    def running(self) -> bool:
        return self._running

    def publish(self, view: TopListView) -> None:
        """Serve ``view`` from now on."""
        self.stats.generations += 1
        self._holder.publish(view)

    async def wait_for_view(self, after: TopListView | None = None) -> TopListView:
        return await self._holder.wait_for_view(after)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class _Message(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


ConsumerFactory = Callable[[], Any]


class TopListReplica:
    """``async with TopListReplica(settings, topics) as r:`` keeps ``r.view`` current."""

    def __init__(
        self,
        settings: Settings,
        topics: Topics,
        *,
        consumer_factory: ConsumerFactory | None = None,
        retry_first_s: float = _RETRY_FIRST_S,
        retry_max_s: float = _RETRY_MAX_S,
    ) -> None:
        self.settings = settings
        self.retry_first_s = retry_first_s
        self.retry_max_s = retry_max_s
        self.topic = topics.top.name
        # The contract's partition count (one); ensure_topics() checks the real topic.
        self.partitions = tuple(TopicPartition(self.topic, p) for p in range(topics.top.partitions))
        self.stats = ReplicaStats()
        self._consumer_factory = consumer_factory or self._new_consumer
        self._builder = TopListBuilder()
        self._holder = ViewHolder(self.stats)
        self._next_offsets: dict[TopicPartition, int] = {}
        self._state = _State.NEW
        self._task: asyncio.Task[None] | None = None
        self._running = False

    @property
    def view(self) -> TopListView | None:
        return self._holder.view

    @property
    def running(self) -> bool:
        return self._running

    async def wait_for_view(self, after: TopListView | None = None) -> TopListView:
        return await self._holder.wait_for_view(after)

    async def start(self) -> None:
        """Start consuming in the background; returns at once, even if the broker is down."""
        if self._state is _State.STOPPED:
            raise RuntimeError("this TopListReplica was stopped; create a new one to start again")
        if self._state is _State.STARTED:
            return
        self._state = _State.STARTED
        self._task = asyncio.create_task(self._consume_forever(), name=f"replica:{self.topic}")
        logger.info(
            "replica starting",
            extra={"topic": self.topic, "bootstrap_servers": self.settings.kafka_bootstrap_servers},
        )

    async def stop(self) -> None:
        """Stop consuming and close the consumer; safe to call twice."""
        self._state = _State.STOPPED
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task])
        logger.info("replica stopped", extra={"topic": self.topic})

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.consumer_fetch_wait_ms,
            client_id=f"{self.settings.topic_prefix}-web",
        )

    async def _consume_forever(self) -> None:
        delay = self.retry_first_s
        while True:
            consumer = self._consumer_factory()
            try:
                await consumer.start()
                await self._wait_for_topic(consumer)
                consumer.assign(list(self.partitions))
                await self._seek(consumer)
                self._running = True
                delay = self.retry_first_s
                logger.info("replica consuming", extra={"topic": self.topic})
                while True:
                    batches = await consumer.getmany(timeout_ms=_POLL_TIMEOUT_MS)
                    self.apply_batches(batches)
                    self._update_lag(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "replica consumer failed; serving the last view and retrying",
                    exc_info=exc,
                    extra={"topic": self.topic, "retry_in_s": delay},
                )
            finally:
                self._running = False
                await _stop_quietly(consumer)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max_s)

    async def _wait_for_topic(self, consumer: Any) -> None:
        # Never assign a missing topic: the metadata request would let the broker
        # auto-create it with default settings (not compacted, wrong partition count).
        delay = self.retry_first_s
        while self.topic not in await consumer.topics():
            if delay == self.retry_first_s:
                logger.warning(
                    "waiting for the top topic to be created by the stream worker",
                    extra={"topic": self.topic},
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _TOPIC_POLL_MAX_S, self.retry_max_s)

    async def _seek(self, consumer: Any) -> None:
        # A restarted consumer resumes after the last applied message: replaying from the
        # beginning would briefly serve older generations again.
        fresh = [tp for tp in self.partitions if tp not in self._next_offsets]
        for tp, offset in self._next_offsets.items():
            consumer.seek(tp, offset)
        if fresh:
            await consumer.seek_to_beginning(*fresh)

    def apply_batches(self, batches: Mapping[TopicPartition, Sequence[_Message]]) -> None:
        """Apply fetched messages in offset order; publish only the batch's last new view."""
        newest: TopListView | None = None
        for tp, messages in batches.items():
            for message in messages:
                view = self.apply_message(message)
                self._next_offsets[tp] = message.offset + 1
                if view is not None:
                    newest = view
        if newest is not None:
            self._holder.publish(newest)
            logger.info(
                "serving new generation",
                extra={
                    "generation": newest.generation,
                    "total_ranked": newest.total_ranked,
                    "ranking_snapshot_id": newest.ranking_snapshot_id,
                    "pricing_snapshot_id": newest.pricing_snapshot_id,
                },
            )

    def apply_message(self, message: _Message) -> TopListView | None:
        """Apply one message; log, count and skip it when it cannot be applied."""
        where = {"topic": message.topic, "partition": message.partition, "offset": message.offset}
        try:
            view = self._builder.apply(message.key, message.value)
        except IncompleteGeneration as exc:
            self.stats.incomplete_generations += 1
            logger.warning(
                "incomplete generation not published",
                extra={**where, "reason": str(exc), "missing": list(exc.missing[:20])},
            )
            return None
        except ReplicaError as exc:
            self.stats.skipped_messages += 1
            logger.warning("skipped a message", extra={**where, "reason": str(exc)})
            return None
        self.stats.messages_applied += 1
        if view is not None:
            self.stats.generations += 1
        return view

    def _update_lag(self, consumer: Any) -> None:
        lag = 0
        for tp in self.partitions:
            highwater = consumer.highwater(tp)
            if highwater is None:
                return
            lag += max(0, highwater - self._next_offsets.get(tp, 0))
        self.stats.lag = lag


async def _stop_quietly(consumer: Any) -> None:
    try:
        await consumer.stop()
    except Exception as exc:
        logger.warning("closing the Kafka consumer failed", exc_info=exc)
