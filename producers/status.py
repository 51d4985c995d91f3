"""A producer's health after each poll, published to the compacted status topic.

``StatusReporter`` keeps the running record (last success, last error, consecutive
failures) and sends a fresh ``ProducerStatus`` after every poll, success or failure. A
status that cannot be sent is logged and counted, never raised: status is for
observers, and the poll loop must go on without it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from topcoins.producers.metrics import ProducerMetrics
from topcoins.redaction import redact
from topcoins.schemas.records import ProducerStatus, Snapshot, utc_millis

__all__ = ["MAX_ERROR_CHARS", "StatusReporter", "one_line"]

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500

SendStatus = Callable[[ProducerStatus], Awaitable[object]]


def one_line(text: str, secrets: Iterable[str] = (), limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters, every secret replaced by ``***``
    (in every form ``topcoins.redaction`` knows)."""
    text = redact(text, secrets)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


# A status before its first poll has finished: neither a success nor an error yet.
_NO_OUTCOME: dict[str, Any] = dict.fromkeys(
    ("last_success_at", "last_snapshot_id", "last_error", "last_error_kind", "last_error_at")
) | {"consecutive_failures": 0}


class StatusReporter:
    """Builds and sends the ``ProducerStatus`` of one producer after each poll."""

    def __init__(
        self,
        *,
        provider: str,
        component: str,
        interval: float,
        send: SendStatus,
        metrics: ProducerMetrics,
        secrets: Iterable[str] = (),
    ) -> None:
        self._send = send
        self._metrics = metrics
        self._secrets = tuple(s for s in secrets if s)
        self._status: ProducerStatus | None = None
        self.provider = provider
        self.component = component
        self.interval = interval

    def __repr__(self) -> str:
        return f"StatusReporter(provider={self.provider!r})"

    @property
    def current(self) -> ProducerStatus | None:
        """The last status built (sent or not), None before the first poll."""
        return self._status

    async def succeeded(self, attempted_at: datetime, snapshot: Snapshot) -> ProducerStatus:
        """Record a published snapshot and send the status."""
        status = self._next(attempted_at)
        status = dataclasses.replace(
            status,
            last_success_at=snapshot.fetched_at,
            last_snapshot_id=snapshot.snapshot_id,
            consecutive_failures=0,
        )
        return await self._publish(status)

    async def failed(self, attempted_at: datetime, kind: str, error: str) -> ProducerStatus:
        """Record a failed poll (``kind`` as in ``UpstreamError.kind``, or ``publish``)."""
        status = self._next(attempted_at)
        status = dataclasses.replace(
            status,
            last_error=one_line(error, self._secrets),
            last_error_kind=kind,
            last_error_at=utc_millis(attempted_at),
            consecutive_failures=status.consecutive_failures + 1,
        )
        return await self._publish(status)

    async def credits_charged(self, paid_until: datetime, now: datetime) -> ProducerStatus:
        """Record the credit ledger's state (before a CoinMarketCap call) and send the
        status; before the first poll, the status says an attempt started ``now``."""
        status = self._status if self._status is not None else self._next(now)
        # Rounded up to the next millisecond: a restored ledger is never behind this one.
        paid = utc_millis(paid_until + timedelta(microseconds=999))
        return await self._publish(dataclasses.replace(status, credits_paid_until=paid))

    def _next(self, attempted_at: datetime) -> ProducerStatus:
        """The last status, or one with no outcome before the first poll, attempted again."""
        previous = self._status or ProducerStatus(
            provider=self.provider,
            component=self.component,
            poll_interval_seconds=self.interval,
            last_attempt_at=attempted_at,
            **_NO_OUTCOME,
        )
        return dataclasses.replace(
            previous,
            last_attempt_at=utc_millis(attempted_at),
            poll_interval_seconds=self.interval,  # the current interval, should it change
        )

    async def _publish(self, status: ProducerStatus) -> ProducerStatus:
        self._status = status
        try:
            await self._send(status)
        except Exception as exc:  # never fatal: the poll loop must go on
            self._metrics.status_publish_failed()
            logger.warning(
                "could not publish the producer status",
                extra={
                    "provider": status.provider,
                    "error": one_line(f"{type(exc).__name__}: {exc}", self._secrets),
                },
            )
        return status
