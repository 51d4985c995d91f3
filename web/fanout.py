"""``StreamHub``: fans each new list out to every open ``GET /stream``, encoded once.

One task per process waits for the replica's next view (``Replica.wait_for_view``) and
wakes at least once a second. Whenever the current event id changes (a new generation, or
a source turning stale or fresh again; see ``topcoins.web.sse``) it takes the ``GET /``
JSON body of each ``limit`` in use from the shared per-view cache (``routes.Renderer``:
the same bytes ``GET /`` sends, ``meta`` rejoined at most once a second), frames it as
one event per ``limit``, and offers those same bytes to every subscriber. Every
``HEARTBEAT_SECONDS`` it offers a heartbeat comment to all of them.

Each subscriber has a bounded queue (``QUEUE_EVENTS`` pending chunks). Offering never
waits: a subscriber whose queue is full is closed (``too_slow``) and its endpoint ends
the response, so a client that does not read never delays the others, the hub or the
replica. ``close()`` (at shutdown) closes every subscriber so that open streams end at
once instead of holding up the server's graceful shutdown. Counts of open streams and of
closed ones by reason are exported as Prometheus metrics (the hub is a collector).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Iterator
from dataclasses import KW_ONLY, dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from topcoins.lifecycle import AsyncLifecycle
from topcoins.web.errors import TooManyStreams
from topcoins.web.params import Format
from topcoins.web.replica import Replica
from topcoins.web.routes import Renderer
from topcoins.web.sse import HEARTBEAT, event_id, sse_event
from topcoins.web.view import TopListView

__all__ = [
    "HEARTBEAT_SECONDS",
    "QUEUE_EVENTS",
    "CloseReason",
    "StreamClosed",
    "StreamHub",
    "Subscription",
]

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
# Chunks (events or heartbeats) a subscriber may have pending before it counts as too slow.
QUEUE_EVENTS = 8
_TICK_SECONDS = 1.0


class CloseReason(enum.StrEnum):
    """Why a stream ended."""

    CLIENT_GONE = "client_gone"
    TOO_SLOW = "too_slow"
    SHUTDOWN = "shutdown"


class StreamClosed(Exception):
    """The subscription was closed; ``reason`` says why."""

    def __init__(self, reason: CloseReason) -> None:
        super().__init__(str(reason))
        self.reason = reason


class Subscription:
    """One stream's bounded queue of encoded chunks, and the id of its last event."""

    def __init__(self, limit: int, capacity: int = QUEUE_EVENTS) -> None:
        self.limit = limit
        self.capacity = capacity
        self.last_id: str | None = None
        self.reason: CloseReason | None = None
        self.closed: asyncio.Future[CloseReason] = asyncio.get_running_loop().create_future()
        self._pending: list[bytes] = []
        self._wakeup = asyncio.Event()

    def offer(self, chunk: bytes) -> bool:
        """Queue ``chunk`` without waiting; a full queue closes the subscription
        (``too_slow``). False when the chunk was not queued."""
        if self.reason is not None:
            return False
        if len(self._pending) >= self.capacity:
            self.close(CloseReason.TOO_SLOW)
            return False
        self._pending.append(chunk)
        self._wakeup.set()
        return True

    def close(self, reason: CloseReason) -> None:
        """End the subscription (the first reason sticks); wakes ``take`` and ``closed``."""
        if self.reason is not None:
            return
        self.reason = reason
        self._pending.clear()
        self._wakeup.set()
        self.closed.set_result(reason)

    async def take(self) -> bytes:
        """Every pending chunk, joined, once there is one; raises ``StreamClosed``."""
        while not self._pending:
            if self.reason is not None:
                raise StreamClosed(self.reason)
            self._wakeup.clear()
            await self._wakeup.wait()
        chunks, self._pending = self._pending, []
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@dataclass(eq=False)
class StreamHub(AsyncLifecycle, Collector):
    """The open streams of one process and the task that feeds them (see the module
    docstring); ``async with`` runs the task, ``subscribe`` opens a stream."""

    replica: Replica
    renderer: Renderer
    max_streams: int
    _: KW_ONLY
    capacity: int = QUEUE_EVENTS
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    tick_seconds: float = _TICK_SECONDS
    closed_total: dict[CloseReason, int] = field(
        default_factory=lambda: dict.fromkeys(CloseReason, 0), init=False
    )
    _subscribers: set[Subscription] = field(default_factory=set, init=False)
    _sent_id: str | None = field(default=None, init=False)
    _frames: dict[int, tuple[bytes, bytes]] = field(default_factory=dict, init=False)
    _closed: bool = field(default=False, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    @property
    def open_streams(self) -> int:
        """How many streams are open."""
        return len(self._subscribers)

    def subscribe(self, limit: int, last_event_id: str | None = None) -> Subscription:
        """A new stream of the list's first ``limit`` assets; its queue starts with the current
        event unless that is ``last_event_id`` (the client has it) or there is no list yet.
        Raises ``TooManyStreams`` past ``max_streams``."""
        if len(self._subscribers) >= self.max_streams:
            raise TooManyStreams(self.max_streams)
        subscription = Subscription(limit, self.capacity)
        if self._closed:
            subscription.close(CloseReason.SHUTDOWN)
            return subscription
        eid = self._current_id()
        if eid is not None:
            if eid != last_event_id:
                subscription.offer(self._frame(limit, eid))
            subscription.last_id = eid
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget ``subscription`` (closed as ``client_gone`` unless already closed) and
        count it by its close reason."""
        if subscription not in self._subscribers:
            return
        self._subscribers.discard(subscription)
        subscription.close(CloseReason.CLIENT_GONE)
        assert subscription.reason is not None
        self.closed_total[subscription.reason] += 1
        if subscription.reason is CloseReason.TOO_SLOW:
            logger.warning(
                "stream client too slow; disconnected it",
                extra={"limit": subscription.limit, "queue_capacity": subscription.capacity},
            )

    def broadcast(self) -> int:
        """Offer the current event to every subscriber that lacks it (the feeding task calls
        this on each new view and each tick); returns how many were offered it."""
        eid = self._current_id()
        if eid is None or not self._subscribers:
            return 0
        if eid == self._sent_id:
            return 0
        self._sent_id = eid
        self._frames = {}
        offered = 0
        for subscription in list(self._subscribers):
            if subscription.last_id == eid:
                continue
            subscription.last_id = eid
            if subscription.offer(self._frame(subscription.limit, eid)):
                offered += 1
        return offered

    def heartbeat(self) -> None:
        """Offer a heartbeat comment to every subscriber."""
        for subscription in list(self._subscribers):
            subscription.offer(HEARTBEAT)

    async def _start(self) -> None:
        """Start feeding subscribers in the background."""
        self._task = asyncio.create_task(self._feed(), name="stream-hub")

    def close(self) -> None:
        """Close every open stream and refuse new ones (the server is shutting down)."""
        self._closed = True
        for subscription in list(self._subscribers):
            subscription.close(CloseReason.SHUTDOWN)

    async def _stop(self) -> None:
        """``close()``, then stop the feeding task."""
        self.close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        opened = GaugeMetricFamily("topcoins_web_streams_open", "Open GET /stream streams.")
        opened.add_metric([], len(self._subscribers))
        yield opened
        closed = CounterMetricFamily(
            "topcoins_web_streams_closed",
            "GET /stream streams ended, by reason: client_gone, too_slow (queue full), shutdown.",
            labels=["reason"],
        )
        for reason, count in self.closed_total.items():
            closed.add_metric([str(reason)], count)
        yield closed

    async def _feed(self) -> None:
        loop = asyncio.get_running_loop()
        view: TopListView | None = None
        next_heartbeat = loop.time() + self.heartbeat_seconds
        while True:
            wait = max(0.0, min(self.tick_seconds, next_heartbeat - loop.time()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    view = await self.replica.wait_for_view(view)
            try:
                self.broadcast()
            except Exception:  # never let one bad encoding end every stream's feed
                logger.exception("stream broadcast failed")
            if loop.time() >= next_heartbeat:
                self.heartbeat()
                next_heartbeat = loop.time() + self.heartbeat_seconds

    def _current_id(self) -> str | None:
        view = self.replica.view
        if view is None:
            return None
        return event_id(view, self.renderer.freshness())

    def _frame(self, limit: int, eid: str) -> bytes:
        """The event for ``limit``: framed once per body, shared by every subscriber."""
        body = self.renderer.response(Format.JSON, limit).body
        cached = self._frames.get(limit)
        if cached is not None and cached[0] is body:
            return cached[1]
        frame = sse_event(eid, body)
        self._frames[limit] = (body, frame)
        return frame
