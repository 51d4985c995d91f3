"""An in-process replica of the top topic (the latest complete ``TopListView``) and of the
status topic (the latest ``ProducerStatus`` per provider).

``TopListReplica`` reads both topics with consumers without a consumer group, from the
beginning (``follower.TopicFollower``), so every web process rebuilds the whole
(compacted) list on its own. Top-topic messages go through a ``TopListBuilder``, status
messages through a ``StatusBoard``; a message that cannot be applied is logged with its
topic, partition and offset, counted and skipped. Requests only ever read
``replica.view`` and ``replica.statuses``: they never wait on Kafka, and when the broker
goes away the last view keeps being served while the consumers reconnect.

``caught_up`` turns true once the replica has read the top topic up to the end offset the
broker reported at start-up *and* has a complete generation, so a replica started while
the rest runs reports ready only with the full current list, not with the first
generation of a long backlog. It never turns false again: a replica that has the list
keeps serving it (flagged stale when it gets old) through broker and provider outages.
``consumers`` names, per followed topic, why its consumer is stuck (None while healthy;
see ``follower.TopicFollower.stuck_reason``); ``/readyz`` and ``/status`` show it.

``StaticReplica`` serves fixed views from memory (tests, benchmarks).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Protocol, Self

from aiokafka import AIOKafkaConsumer, TopicPartition

from topcoins.kafka_security import kafka_client_options
from topcoins.lifecycle import AsyncLifecycle
from topcoins.schemas.records import ProducerStatus
from topcoins.schemas.topics import META_KEY, Topics
from topcoins.settings import Settings
from topcoins.tracing import context_from_headers, start_span
from topcoins.tracing import enabled as tracing_enabled
from topcoins.web.delivery import observe_served
from topcoins.web.errors import IncompleteGeneration, ReplicaError
from topcoins.web.follower import ConsumerFactory, Message, TopicFollower
from topcoins.web.stages import STAGE_SECONDS
from topcoins.web.status import StatusBoard
from topcoins.web.view import TopListBuilder, TopListView

__all__ = [
    "Replica",
    "ReplicaStats",
    "StaticReplica",
    "TopListReplica",
    "ViewHolder",
]

logger = logging.getLogger(__name__)

_RETRY_FIRST_S = 0.5
_RETRY_MAX_S = 30.0
# Empty fetches in a row that count as "read to the end" (see follower.TopicFollower).
_IDLE_POLLS = 3
_APPLY_SECONDS = STAGE_SECONDS.labels("apply")
_META_KEY = META_KEY.encode()


@dataclass
class ReplicaStats:
    """What the replica has done so far; read by ``/metrics`` at scrape time."""

    messages_applied: int = 0
    skipped_messages: int = 0
    generations: int = 0
    incomplete_generations: int = 0
    lag: int | None = None
    last_generation_at: float | None = None
    status_messages_applied: int = 0
    skipped_status_messages: int = 0


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

    @property
    def caught_up(self) -> bool:
        """True once the replica holds the full current list (see the module docstring)."""
        ...

    @property
    def statuses(self) -> Mapping[str, ProducerStatus]:
        """The latest ``ProducerStatus`` per provider; a new mapping after every change."""
        ...

    @property
    def consumers(self) -> Mapping[str, str | None]:
        """Per followed topic: why its consumer is stuck, or None while it is healthy."""
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
    """A replica that serves the views it is given; ``publish`` swaps in a new one.

    It is caught up as soon as it has a view; ``publish_status`` sets a provider's status;
    ``stuck`` (topic -> reason) plays consumers that are stuck.
    """

    def __init__(
        self,
        view: TopListView | None = None,
        *,
        running: bool = True,
        statuses: Sequence[ProducerStatus] = (),
        stuck: Mapping[str, str] | None = None,
    ) -> None:
        self.stats = ReplicaStats()
        self.stuck = dict(stuck or {})
        self._holder = ViewHolder(self.stats)
        self._running = running
        self._statuses: Mapping[str, ProducerStatus] = MappingProxyType(
            {status.provider: status for status in statuses}
        )
        if view is not None:
            self.publish(view)

    @property
    def view(self) -> TopListView | None:
        return self._holder.view

    @property
    def running(self) -> bool:
        return self._running

    @property
    def caught_up(self) -> bool:
        return self._holder.view is not None

    @property
    def statuses(self) -> Mapping[str, ProducerStatus]:
        return self._statuses

    @property
    def consumers(self) -> Mapping[str, str | None]:
        return dict(self.stuck)

    def publish(self, view: TopListView) -> None:
        """Serve ``view`` from now on."""
        self.stats.generations += 1
        self._holder.publish(view)

    def publish_status(self, status: ProducerStatus) -> None:
        """Make ``status`` its provider's latest status."""
        self._statuses = MappingProxyType({**self._statuses, status.provider: status})

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


class TopListReplica(AsyncLifecycle):
    """``async with TopListReplica(settings, topics) as r:`` keeps ``r.view`` current.

    Two ``TopicFollower`` tasks run side by side: one reads the top topic into views, the
    other the status topic into ``statuses``. Either may wait for its topic to be created
    (the stream worker creates the top topic, the producers the status topic) without
    holding up the other.
    """

    def __init__(
        self,
        settings: Settings,
        topics: Topics,
        *,
        consumer_factory: ConsumerFactory | None = None,
        retry_first_s: float = _RETRY_FIRST_S,
        retry_max_s: float = _RETRY_MAX_S,
        idle_polls: int = _IDLE_POLLS,
    ) -> None:
        self.settings = settings
        self.topic = topics.top.name
        self.status_topic = topics.status.name
        self.stats = ReplicaStats()
        factory = consumer_factory or self._new_consumer
        retry = {"retry_first_s": retry_first_s, "retry_max_s": retry_max_s}
        # The contract's partition counts (one); ensure_topics() checks the real topics.
        self._top = TopicFollower(
            self.topic,
            topics.top.partitions,
            self.apply_batches,
            factory,
            created_by="stream worker",
            idle_polls=idle_polls,
            on_lag=self._set_lag,
            **retry,
        )
        self._status = TopicFollower(
            self.status_topic,
            topics.status.partitions,
            self.apply_status_batches,
            factory,
            created_by="pricing and ranking producers",
            idle_polls=idle_polls,
            **retry,
        )
        self.partitions = self._top.partitions
        self._builder = TopListBuilder()
        self._board = StatusBoard()
        self._holder = ViewHolder(self.stats)
        self._state = _State.NEW
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def view(self) -> TopListView | None:
        return self._holder.view

    @property
    def running(self) -> bool:
        return self._top.running

    @property
    def caught_up(self) -> bool:
        return self._top.caught_up and self._holder.view is not None

    @property
    def statuses(self) -> Mapping[str, ProducerStatus]:
        return self._board.statuses

    @property
    def consumers(self) -> Mapping[str, str | None]:
        return {follower.topic: follower.stuck_reason for follower in (self._top, self._status)}

    async def wait_for_view(self, after: TopListView | None = None) -> TopListView:
        return await self._holder.wait_for_view(after)

    async def start(self) -> None:
        """Start consuming in the background; returns at once, even if the broker is down."""
        if self._state is _State.STOPPED:
            raise RuntimeError("this TopListReplica was stopped; create a new one to start again")
        if self._state is _State.STARTED:
            return
        self._state = _State.STARTED
        self._tasks = [
            asyncio.create_task(follower.run(), name=f"replica:{follower.topic}")
            for follower in (self._top, self._status)
        ]
        logger.info(
            "replica starting",
            extra={
                "topic": self.topic,
                "status_topic": self.status_topic,
                "bootstrap_servers": self.settings.kafka_bootstrap_servers,
            },
        )

    async def stop(self) -> None:
        """Stop consuming and close the consumers; safe to call twice."""
        self._state = _State.STOPPED
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        logger.info("replica stopped", extra={"topic": self.topic})

    def _new_consumer(self, topic: str) -> AIOKafkaConsumer:
        role = "web" if topic == self.topic else "web-status"
        return AIOKafkaConsumer(
            **kafka_client_options(self.settings),
            bootstrap_servers=self.settings.kafka_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.consumer_fetch_wait_ms,
            client_id=f"{self.settings.topic_prefix}-{role}",
        )

    def _set_lag(self, lag: int) -> None:
        self.stats.lag = lag

    def apply_batches(self, batches: Mapping[TopicPartition, Sequence[Message]]) -> None:
        """Apply fetched top-topic messages in offset order; publish only the last new view."""
        newest: TopListView | None = None
        written_at: int | None = None
        with _APPLY_SECONDS.time():
            for messages in batches.values():
                for message in messages:
                    view = self.apply_message(message)
                    if view is not None:
                        # ConsumerRecord.timestamp: when the worker wrote the meta (ms).
                        newest, written_at = view, getattr(message, "timestamp", None)
        if newest is not None:
            self._holder.publish(newest)
            if self._top.caught_up:  # the backlog read at start-up would skew the figures
                observe_served(newest, time.time(), written_at)
            logger.info(
                "serving new generation",
                extra={
                    "generation": newest.generation,
                    "total_ranked": newest.total_ranked,
                    "ranking_snapshot_id": newest.ranking_snapshot_id,
                    "pricing_snapshot_id": newest.pricing_snapshot_id,
                },
            )

    def apply_message(self, message: Message) -> TopListView | None:
        """Apply one top-topic message; log, count and skip it when it cannot be applied.

        When tracing is on, applying a meta (closing a generation) is an ``apply generation``
        span in the trace of the worker's write (the meta's ``traceparent`` header)."""
        if tracing_enabled() and message.key == _META_KEY:
            context = context_from_headers(getattr(message, "headers", None))
            with start_span("apply generation", kind="consumer", context=context):
                return self._apply_message(message)
        return self._apply_message(message)

    def _apply_message(self, message: Message) -> TopListView | None:
        where = _where(message)
        try:
            view = self._builder.apply(message.key, message.value)
        except IncompleteGeneration as exc:
            self.stats.incomplete_generations += 1
            logger.warning(
                "incomplete generation not published",
                extra={**where, "reason": str(exc), "missing": list(exc.missing[:20])},
            )
            return None
        except Exception as exc:  # InvalidMessage, or anything else the message provokes
            self.stats.skipped_messages += 1
            logger.warning("skipped a message", extra={**where, "reason": _reason(exc)})
            return None
        self.stats.messages_applied += 1
        if view is not None:
            self.stats.generations += 1
        return view

    def apply_status_batches(self, batches: Mapping[TopicPartition, Sequence[Message]]) -> None:
        """Apply fetched status-topic messages; each takes effect at once."""
        for messages in batches.values():
            for message in messages:
                try:
                    self._board.apply(message.key, message.value)
                except Exception as exc:  # InvalidMessage, or anything else it provokes
                    self.stats.skipped_status_messages += 1
                    logger.warning(
                        "skipped a status message",
                        extra={**_where(message), "reason": _reason(exc)},
                    )
                else:
                    self.stats.status_messages_applied += 1


def _reason(exc: Exception) -> str:
    # Our own errors explain themselves; for anything else the type matters too.
    return str(exc) if isinstance(exc, ReplicaError) else repr(exc)


def _where(message: Message) -> dict[str, object]:
    return {"topic": message.topic, "partition": message.partition, "offset": message.offset}
