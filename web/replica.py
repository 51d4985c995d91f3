"""An in-process replica of the top topic (the latest complete ``TopListView``) and of the
status topic (the latest ``ProducerStatus`` per provider).

``TopListReplica`` reads both topics with consumers without a consumer group, from the
beginning (``topcoins.topic_reader.TopicReader``), so every web process rebuilds the whole
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
see ``TopicReader.stuck_reason``); ``/readyz`` and ``/status`` show it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from topcoins.kafka_security import kafka_client_options
from topcoins.lifecycle import AsyncLifecycle, LifecycleState
from topcoins.schemas.records import ProducerStatus
from topcoins.schemas.topics import META_KEY, Topics, TopicSpec
from topcoins.settings import Settings
from topcoins.topic_reader import (
    Batches,
    BatchHandler,
    Message,
    TopicReader,
    group_less_consumer,
    skip_unusable,
    where,
)
from topcoins.tracing import context_from_headers, start_span
from topcoins.tracing import enabled as tracing_enabled
from topcoins.web.delivery import observe_served
from topcoins.web.errors import IncompleteGeneration, ReplicaError
from topcoins.web.stages import STAGE_SECONDS
from topcoins.web.status import StatusBoard
from topcoins.web.view import TopListBuilder, TopListView

__all__ = ["ConsumerFactory", "Replica", "ReplicaStats", "TopListReplica", "ViewHolder"]

logger = logging.getLogger(__name__)

_RETRY_FIRST_S = 0.5
_RETRY_MAX_S = 30.0
# Empty fetches in a row that count as "read to the end" (see TopicReader).
_IDLE_POLLS = 3
_APPLY_SECONDS = STAGE_SECONDS.labels("apply")
_META_KEY = META_KEY.encode()
# ``factory(topic)``: a new, unstarted consumer for reading ``topic``.
ConsumerFactory = Callable[[str], Any]


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


class Replica(AbstractAsyncContextManager["Replica"], Protocol):
    """What the web app needs from a replica; ``async with`` it to keep it current."""

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


class TopListReplica(AsyncLifecycle):
    """``async with TopListReplica(settings, topics) as r:`` keeps ``r.view`` current.

    Two ``TopicReader`` tasks run side by side: one reads the top topic into views, the
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

        def reader(topic: TopicSpec, handle: BatchHandler, **options: Any) -> TopicReader:
            # The contract's partition counts (one); ensure_topics() checks the real topics.
            return TopicReader(
                topic.name,
                topic.partitions,
                handle,
                lambda: factory(topic.name),
                retry_first_s=retry_first_s,
                retry_max_s=retry_max_s,
                idle_polls=idle_polls,
                **options,
            )

        self._top = reader(
            topics.top, self.apply_batches, created_by="stream worker", on_lag=self._set_lag
        )
        self._status = reader(
            topics.status, self.apply_status_batches, created_by="pricing and ranking producers"
        )
        self.partitions = self._top.partitions
        self._builder = TopListBuilder()
        self._board = StatusBoard()
        self._holder = ViewHolder(self.stats)

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
        return {reader.topic: reader.stuck_reason for reader in (self._top, self._status)}

    async def wait_for_view(self, after: TopListView | None = None) -> TopListView:
        return await self._holder.wait_for_view(after)

    async def _start(self) -> None:
        """Start consuming in the background; returns at once, even if the broker is down."""
        for reader in (self._top, self._status):
            await reader.start()
        logger.info(
            "replica starting",
            extra={
                "topic": self.topic,
                "status_topic": self.status_topic,
                "bootstrap_servers": self.settings.kafka_bootstrap_servers,
            },
        )

    async def _stop(self) -> None:
        """Stop consuming and close the consumers."""
        if self._top.lifecycle is LifecycleState.NEW:
            return
        for reader in (self._top, self._status):
            await reader.stop()
        logger.info("replica stopped", extra={"topic": self.topic})

    def _new_consumer(self, topic: str) -> Any:
        role = "web" if topic == self.topic else "web-status"
        return group_less_consumer(
            self.settings.kafka_servers,
            f"{self.settings.topic_prefix}-{role}",
            kafka_client_options(self.settings),
            fetch_max_wait_ms=self.settings.consumer_fetch_wait_ms,
        )

    def _set_lag(self, lag: int) -> None:
        self.stats.lag = lag

    def apply_batches(self, batches: Batches) -> None:
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
        try:
            view = self._builder.apply(message.key, message.value)
        except IncompleteGeneration as exc:
            self.stats.incomplete_generations += 1
            logger.warning(
                "incomplete generation not published",
                extra={**where(message), "reason": str(exc), "missing": list(exc.missing[:20])},
            )
            return None
        except Exception as exc:  # InvalidMessage, or anything else the message provokes
            self.stats.skipped_messages += 1
            logger.warning("skipped a message", extra={**where(message), "reason": _reason(exc)})
            return None
        self.stats.messages_applied += 1
        if view is not None:
            self.stats.generations += 1
        return view

    def apply_status_batches(self, batches: Batches) -> None:
        """Apply fetched status-topic messages; each takes effect at once."""
        skip_unusable(batches, self._apply_status, self._skipped_status)

    def _apply_status(self, message: Message) -> None:
        self._board.apply(message.key, message.value)
        self.stats.status_messages_applied += 1

    def _skipped_status(self, message: Message, exc: Exception) -> None:
        # InvalidMessage, or anything else the message provokes
        self.stats.skipped_status_messages += 1
        logger.warning("skipped a status message", extra={**where(message), "reason": _reason(exc)})


def _reason(exc: Exception) -> str:
    # Our own errors explain themselves; for anything else the type matters too.
    return str(exc) if isinstance(exc, ReplicaError) else repr(exc)
