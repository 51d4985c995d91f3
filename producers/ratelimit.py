"""Pacing of provider calls: sliding windows, the provider's own counters, one async gate.

Every call a client sends (first pages, further pages, retries) first awaits
``Pacer.acquire(credits)``. The pacer asks each of its gates how long that call must wait:

- ``SlidingWindowLimiter``: at most ``limit`` calls in any ``seconds``-long window, for
  each window (CryptoCompare's second/minute/hour/day, CoinMarketCap's calls per minute).
  It reads the provider's ``RateLimit`` counters too and trusts them whenever they show
  less headroom than its own log (another process may share the key).
- ``CreditLedger`` (``budget.py``): CoinMarketCap credits per month.

A provider's ``Retry-After`` holds every gate (``Pacer.hold``). A wait of up to
``max_wait`` seconds is slept, interruptibly; a longer one fails the call at once with
``LocalLimitError`` and nothing is sent, so a poll never hangs for hours and its status
says why. All gates are pure (they take ``now``, in ``time.monotonic()`` seconds); only
``Pacer`` sleeps.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from topcoins.producers.errors import WINDOW_SECONDS, LocalLimitError, RateLimitUsage
from topcoins.producers.retry import Sleep, interruptible_sleep

__all__ = [
    "NO_WAIT",
    "RANKING_RESERVE_SHARE",
    "Gate",
    "Pacer",
    "RankingPace",
    "SlidingWindowLimiter",
    "Wait",
    "WaitInterrupted",
    "Window",
    "plan_ranking",
]

logger = logging.getLogger(__name__)

# Share of every CryptoCompare window the poll schedule leaves free for retries and for
# the extra page fetched when duplicates straddle two pages.
RANKING_RESERVE_SHARE = 0.1


class WaitInterrupted(Exception):
    """The stop event was set while a call waited for its turn; the call was not sent."""


@dataclass(frozen=True)
class Wait:
    """How long a call must wait (0: go now) and which limit decides (``minute``, ...)."""

    seconds: float
    limit: str = ""


NO_WAIT = Wait(0.0)

_LIMIT_NAMES = {
    "credits": "the monthly credit budget",
    "retry_after": "the provider's last rate-limit answer",
}


class Gate(Protocol):
    """One limit a call must pass: ``wait`` asks, ``record`` charges an admitted call."""

    def wait(self, credits: int, now: float) -> Wait:
        """How long a call costing ``credits`` must wait at ``now``."""
        ...

    def record(self, credits: int, now: float) -> None:
        """Charge a call that is sent at ``now``."""
        ...


@dataclass(frozen=True)
class Window:
    """At most ``limit`` calls in any ``seconds``-long window; ``name`` as the provider says."""

    name: str
    seconds: float
    limit: int

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.limit < 1:
            raise ValueError(f"window {self.name}: seconds and limit must be positive")


@dataclass
class _Track:
    """Our calls in one window (as expiry times) plus what the provider told us about it."""

    window: Window
    expiries: list[float] = field(default_factory=list)
    provider_limit: int | None = None
    excess: int = 0
    excess_until: float = -math.inf

    @property
    def limit(self) -> int:
        if self.provider_limit is None:
            return self.window.limit
        return min(self.window.limit, self.provider_limit)

    def ours(self, at: float) -> int:
        """Our calls still inside the window at ``at`` (a call expires ``seconds`` after it)."""
        return len(self.expiries) - bisect.bisect_right(self.expiries, at)

    def count(self, at: float) -> int:
        return self.ours(at) + (self.excess if at < self.excess_until else 0)

    def prune(self, now: float) -> None:
        del self.expiries[: bisect.bisect_right(self.expiries, now)]

    def delay(self, now: float) -> float:
        """Seconds until one more call fits (``inf`` if it never will)."""
        self.prune(now)
        if self.count(now) < self.limit:
            return 0.0
        # The count only falls when one of our calls or the provider's excess expires.
        moments = self.expiries + ([self.excess_until] if self.excess_until > now else [])
        for moment in sorted(moments):
            if self.count(moment) < self.limit:
                return moment - now
        return math.inf


class SlidingWindowLimiter:
    """Keeps every call within each window's limit; charges one call whatever its credits.

    ``observe`` reads a provider ``RateLimit`` block: a lower ``max_calls`` replaces the
    configured limit, and when ``calls_made`` exceeds our own count of that window, the
    difference is assumed to hold for one whole window length from now (we cannot know
    when the provider's extra calls were made, so we assume the latest moment). A window
    the provider reports and we do not configure (``month``) is added with its limit.
    """

    def __init__(self, windows: Iterable[Window]) -> None:
        self._tracks = {window.name: _Track(window) for window in windows}
        if not self._tracks:
            raise ValueError("a SlidingWindowLimiter needs at least one window")

    @property
    def windows(self) -> tuple[Window, ...]:
        """The windows in force, with the provider's lower limits applied."""
        tracks = self._tracks.values()
        return tuple(Window(t.window.name, t.window.seconds, t.limit) for t in tracks)

    def wait(self, credits: int, now: float) -> Wait:
        longest = NO_WAIT
        for name, track in self._tracks.items():
            seconds = track.delay(now)
            if seconds > longest.seconds:
                longest = Wait(seconds, name)
        return longest

    def record(self, credits: int, now: float) -> None:
        for track in self._tracks.values():
            track.prune(now)
            track.expiries.append(now + track.window.seconds)

    def calls(self, name: str, now: float) -> int:
        """Calls counted in window ``name`` at ``now`` (ours plus the provider's excess)."""
        track = self._tracks[name]
        track.prune(now)
        return track.count(now)

    def observe(self, usage: RateLimitUsage, now: float) -> None:
        for name, allowed in usage.max_calls.items():
            seconds = WINDOW_SECONDS.get(name)
            if seconds is None or allowed < 1:
                continue
            track = self._tracks.setdefault(name, _Track(Window(name, seconds, allowed)))
            track.provider_limit = allowed
        for name, made in usage.calls_made.items():
            track = self._tracks.get(name)
            if track is None:
                continue
            track.prune(now)
            ours = track.ours(now)
            if made > ours:
                track.excess, track.excess_until = made - ours, now + track.window.seconds
            else:
                track.excess, track.excess_until = 0, -math.inf


class Pacer:
    """The one door every call of a client goes through (see the module docstring).

    ``on_wait(limit, seconds)`` runs before each wait (metrics, logs). Not safe for
    concurrent callers: one poll loop owns it.
    """

    def __init__(
        self,
        provider: str,
        gates: Sequence[Gate] = (),
        *,
        stop: asyncio.Event | None = None,
        max_wait: float | None = None,
        sleep: Sleep = interruptible_sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_wait: Callable[[str, float], None] | None = None,
    ) -> None:
        self.provider = provider
        self.gates = tuple(gates)
        self.max_wait = max_wait
        self._stop = stop
        self._sleep = sleep
        self._monotonic = monotonic
        self._on_wait = on_wait
        self._hold_until = -math.inf

    def __repr__(self) -> str:
        return f"Pacer(provider={self.provider!r}, gates={len(self.gates)})"

    def wait(self, credits: int, now: float) -> Wait:
        """The longest wait any gate (or a hold) imposes on a call at ``now``."""
        longest = NO_WAIT
        for gate in self.gates:
            wait = gate.wait(credits, now)
            if wait.seconds > longest.seconds:
                longest = wait
        if self._hold_until - now > longest.seconds:
            longest = Wait(self._hold_until - now, "retry_after")
        return longest

    async def acquire(self, credits: int = 1) -> None:
        """Return when a call costing ``credits`` may be sent; it is charged to every gate.

        Raises ``LocalLimitError`` when the wait would exceed ``max_wait`` and
        ``WaitInterrupted`` when ``stop`` is set during a wait.
        """
        while True:
            now = self._monotonic()
            wait = self.wait(credits, now)
            if wait.seconds <= 0:
                for gate in self.gates:
                    gate.record(credits, now)
                return
            if self.max_wait is not None and wait.seconds > self.max_wait:
                when = "never" if math.isinf(wait.seconds) else f"in {wait.seconds:.0f} s"
                limit = _LIMIT_NAMES.get(wait.limit, f"the calls-per-{wait.limit} limit")
                raise LocalLimitError(
                    f"{self.provider}: {limit} allows the next call {when}; not calling",
                    provider=self.provider,
                    retry_after=None if math.isinf(wait.seconds) else wait.seconds,
                )
            if self._on_wait is not None:
                self._on_wait(wait.limit, wait.seconds)
            if await self._sleep(wait.seconds, self._stop):
                raise WaitInterrupted(f"{self.provider}: stopped while waiting for a call")

    def observe(self, usage: RateLimitUsage) -> None:
        """Pass a provider ``RateLimit`` block to every gate that reads one."""
        now = self._monotonic()
        for gate in self.gates:
            if isinstance(gate, SlidingWindowLimiter):
                gate.observe(usage, now)

    def hold(self, seconds: float) -> None:
        """No call for ``seconds`` (the provider's ``Retry-After``)."""
        if seconds > 0 and math.isfinite(seconds):
            self._hold_until = max(self._hold_until, self._monotonic() + seconds)


@dataclass(frozen=True)
class RankingPace:
    """The ranking producer's schedule: how many calls a poll makes and how often it polls."""

    pages: int
    configured_interval: float
    window_intervals: dict[str, float]
    interval: float
    windows: tuple[Window, ...] = ()

    def describe(self) -> str:
        """One line for the start-up log."""
        limits = ", ".join(f"{w.limit}/{w.name}" for w in self.windows)
        return (
            f"polls every {self.interval:.1f} s: {self.pages} toplist pages per poll within "
            f"{limits}"
        )

    def log_fields(self) -> dict[str, object]:
        """Numbers for the start-up log line."""
        return {
            "pages_per_poll": self.pages,
            "configured_poll_seconds": self.configured_interval,
            "shortest_interval_per_window": {
                name: round(seconds, 3) for name, seconds in self.window_intervals.items()
            },
            "poll_interval_seconds": round(self.interval, 3),
        }


def plan_ranking(
    windows: Iterable[Window],
    *,
    depth: int,
    page_size: int,
    poll_seconds: float,
    reserve_share: float = RANKING_RESERVE_SHARE,
) -> RankingPace:
    """Stretch ``poll_seconds`` so that ``pages`` calls per poll use at most ``1 - reserve``
    of every window: ``interval >= pages * seconds / (limit * (1 - reserve))``.

    The limiter enforces the windows anyway; this keeps the schedule from running into
    them (with the 2024 free plan and 2 pages, the day window alone needs 25.6 s).
    """
    if not 0 <= reserve_share < 1:
        raise ValueError(f"reserve_share must be in [0, 1), got {reserve_share}")
    windows = tuple(windows)
    pages = math.ceil(depth / page_size)
    share = 1 - reserve_share
    needed = {w.name: pages * w.seconds / (w.limit * share) for w in windows}
    interval = max([poll_seconds, *needed.values()])
    return RankingPace(pages, poll_seconds, needed, interval, windows)
