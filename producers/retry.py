"""Bounded retries with exponential backoff and full jitter, interruptible by a stop event.

Only errors whose class says ``retriable`` are retried. A provider's ``retry_after`` is
honoured: we never call earlier than asked, and when it is longer than the policy's
``max_delay`` we give up on this poll instead of holding it for minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from topcoins.producers.errors import RateLimitError, UpstreamError

__all__ = ["RetryPolicy", "Sleep", "interruptible_sleep", "retry_delay", "with_retries"]

T = TypeVar("T")

# ``await sleep(seconds, stop)`` returns True when ``stop`` was set before the time ran out.
Sleep = Callable[[float, asyncio.Event | None], Awaitable[bool]]


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` calls in total; the n-th retry waits up to ``base_delay * 2**(n-1)``."""

    attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("base_delay and max_delay must not be negative")

    def backoff_ceiling(self, retry: int) -> float:
        """The longest wait before retry number ``retry`` (1-based)."""
        return min(self.max_delay, self.base_delay * 2 ** (retry - 1))


def retry_delay(
    error: UpstreamError, retry: int, policy: RetryPolicy, rand: Callable[[], float]
) -> float | None:
    """Seconds to wait before retry number ``retry``, or ``None`` to give up now."""
    if not error.retriable or error.fatal or retry >= policy.attempts:
        return None
    retry_after = error.retry_after if isinstance(error, RateLimitError) else None
    if retry_after is not None:
        return retry_after if retry_after <= policy.max_delay else None
    return rand() * policy.backoff_ceiling(retry)  # full jitter: uniform in [0, ceiling)


async def interruptible_sleep(seconds: float, stop: asyncio.Event | None) -> bool:
    """Sleep ``seconds``; return True at once (and early) when ``stop`` is set."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    if stop.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    stop: asyncio.Event | None = None,
    on_retry: Callable[[UpstreamError, int, float], None] | None = None,
    sleep: Sleep = interruptible_sleep,
    rand: Callable[[], float] = random.random,
) -> T:
    """``await call()``, retrying retriable ``UpstreamError``s as the policy allows.

    ``on_retry(error, retry_number, delay)`` runs before each wait. The last error is
    re-raised when attempts run out, the error is not retriable, or ``stop`` is set.
    """
    retry = 0
    while True:
        try:
            return await call()
        except UpstreamError as error:
            retry += 1
            delay = retry_delay(error, retry, policy, rand)
            if delay is None or (stop is not None and stop.is_set()):
                raise
            if on_retry is not None:
                on_retry(error, retry, delay)
            if await sleep(delay, stop):
                raise
