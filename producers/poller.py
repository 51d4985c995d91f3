"""The poll loop shared by both producers: fetch, publish, count, report, repeat.

A failed poll publishes nothing, so the last good snapshot on the topic stays in force.
After every poll, success or failure, the producer's status is reported (if a
``StatusReporter`` is given). Only a fatal error (``AuthError``) ends the loop early; it
propagates to the caller after its status was reported.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka.errors import KafkaError

from topcoins.producers.errors import BadResponseError, RateLimitError, UpstreamError
from topcoins.producers.memory import release_freed_memory
from topcoins.producers.metrics import ProducerMetrics
from topcoins.producers.ratelimit import WaitInterrupted
from topcoins.producers.retry import RetryPolicy, Sleep, interruptible_sleep, with_retries
from topcoins.producers.status import StatusReporter
from topcoins.schemas.records import PriceSnapshot, RankingSnapshot, Snapshot
from topcoins.tracing import start_span

__all__ = ["Poller", "snapshot_items"]

logger = logging.getLogger(__name__)


def snapshot_items(snapshot: Snapshot) -> int:
    """How many entries a snapshot holds (quotes or ranked assets)."""
    match snapshot:
        case PriceSnapshot(quotes=entries) | RankingSnapshot(assets=entries):
            return len(entries)
    raise TypeError(f"not a provider snapshot: {type(snapshot).__name__}")


@dataclass(kw_only=True, eq=False)
class Poller:
    """Every ``interval`` seconds: ``snapshot = await fetch()``, then ``await publish(snapshot)``.

    ``publish`` returns the encoded size in bytes. ``ready`` turns True once a snapshot
    has been published. Setting ``stop`` lets the current poll finish, then ``run``
    returns; it also cuts short a retry wait (that poll then fails) and a wait for a rate
    limit (that poll is abandoned: no call was made, nothing is reported).
    """

    provider: str
    fetch: Callable[[], Awaitable[Snapshot]]
    publish: Callable[[Snapshot], Awaitable[int]]
    interval: float
    stop: asyncio.Event
    metrics: ProducerMetrics
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    status: StatusReporter | None = None
    sleep: Sleep = interruptible_sleep
    monotonic: Callable[[], float] = time.monotonic
    unix_now: Callable[[], float] = time.time
    rand: Callable[[], float] = random.random
    _ready: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError(f"interval must be greater than 0, got {self.interval}")

    @property
    def ready(self) -> bool:
        """True once the first snapshot was published."""
        return self._ready

    async def run(self) -> None:
        """Poll until ``stop`` is set; raises the first fatal ``UpstreamError``."""
        while not self.stop.is_set():
            started = self.monotonic()
            await self.poll_once()
            release_freed_memory()  # a large answer's pages, back to the OS between polls
            remaining = max(0.0, self.interval - (self.monotonic() - started))
            if await self.sleep(remaining, self.stop):
                break
        logger.info("poller stopped", extra={"provider": self.provider})

    async def poll_once(self) -> bool:
        """One fetch-and-publish, then the status report; True when a snapshot was published.

        Traced as one ``poll`` span: the HTTP calls and the publish are its children."""
        with start_span("poll", attributes={"topcoins.provider": self.provider}):
            return await self._poll_once()

    async def _poll_once(self) -> bool:
        attempted_at = datetime.fromtimestamp(self.unix_now(), UTC)
        started = self.monotonic()
        try:
            snapshot = await with_retries(
                self.fetch,
                self.retry,
                stop=self.stop,
                on_retry=self._on_retry,
                sleep=self.sleep,
                rand=self.rand,
            )
        except WaitInterrupted:
            logger.info("poll abandoned: stopping", extra={"provider": self.provider})
            return False
        except UpstreamError as error:
            self.metrics.fetch_duration(self.monotonic() - started)
            self._failed(error)
            await self._report_failure(attempted_at, error.kind, str(error))
            if error.fatal:
                raise
            return False
        fetch_seconds = self.monotonic() - started
        self.metrics.fetch_duration(fetch_seconds)
        try:
            size = await self.publish(snapshot)
        except UpstreamError as error:  # the snapshot does not fit its schema
            self._failed(error)
            await self._report_failure(attempted_at, error.kind, str(error))
            return False
        except KafkaError as error:
            self.metrics.error("publish")
            self.metrics.poll(success=False)
            logger.warning(
                "publish failed; the last published snapshot stays in force",
                extra={"provider": self.provider, "kind": "publish", "error": repr(error)},
            )
            await self._report_failure(attempted_at, "publish", f"Kafka: {error!r}")
            return False
        items = snapshot_items(snapshot)
        self.metrics.published(items=items, size_bytes=size, at_unix=self.unix_now())
        self.metrics.poll(success=True)
        self._ready = True
        logger.info(
            "published snapshot",
            extra={
                "provider": self.provider,
                "snapshot_id": snapshot.snapshot_id,
                "items": items,
                "bytes": size,
                "fetch_seconds": round(fetch_seconds, 3),
            },
        )
        if self.status is not None:
            await self.status.succeeded(attempted_at, snapshot)
        return True

    async def _report_failure(self, attempted_at: datetime, kind: str, error: str) -> None:
        if self.status is not None:
            await self.status.failed(attempted_at, kind, error)

    def _on_retry(self, error: UpstreamError, retry: int, delay: float) -> None:
        self.metrics.retried()
        logger.info(
            "retrying provider call",
            extra={
                "provider": self.provider,
                "kind": error.kind,
                "error": str(error),
                "retry": retry,
                "delay_seconds": round(delay, 3),
            },
        )

    def _failed(self, error: UpstreamError) -> None:
        """Count and log a failed poll (the caller re-raises fatal errors)."""
        self.metrics.error(error.kind, rejected=isinstance(error, BadResponseError))
        self.metrics.poll(success=False)
        extra: dict[str, object] = {
            "provider": self.provider,
            "kind": error.kind,
            "error": str(error),
            "retriable": error.retriable,
        }
        if isinstance(error, RateLimitError):
            extra["retry_after_seconds"] = error.retry_after
            if error.usage is not None:
                self.metrics.rate_limit(error.usage)
                extra["calls_made"] = dict(error.usage.calls_made)
                extra["max_calls"] = dict(error.usage.max_calls)
        if error.fatal:
            logger.error("poll failed; stopping the producer", extra=extra)
            return
        logger.warning("poll failed; the last published snapshot stays in force", extra=extra)
