"""When a Kafka consumer counts as stuck: one definition for every component.

A consumer is stuck after ``STUCK_FAILURES`` failed attempts in a row (a fetch, a
reconnect or a handler that raises), or when it has made no progress for
``STUCK_AFTER_S`` although messages wait after its position. Each reader skips what it
cannot use, so a bad message never holds it back; being stuck is the alarm for when
something still does. The web replica's topic readers, the pricing producer's ranked-ids
reader and the worker's agents report it in their ``/readyz`` (``stuck_consumers``:
topic -> reason) and as a ``..._consumer_stuck{topic}`` gauge.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

__all__ = ["STUCK_AFTER_S", "STUCK_FAILURES", "ProgressWatch", "StuckConsumers", "stuck_reason"]

STUCK_FAILURES = 3
STUCK_AFTER_S = 30.0


def stuck_reason(
    *,
    failures: int,
    last_error: str | None,
    stalled_for: float | None,
    positions: Mapping[int, int],
    stuck_failures: int = STUCK_FAILURES,
    stuck_after_s: float = STUCK_AFTER_S,
) -> str | None:
    """Why a consumer counts as stuck, or None while it is healthy.

    ``stalled_for``: seconds since messages were first seen waiting after ``positions``
    (partition -> next offset) with no progress since; None while not stalled.
    """
    if failures >= stuck_failures:
        return f"{failures} failed attempts in a row; last error: {last_error}"
    if stalled_for is not None and stalled_for >= stuck_after_s:
        return (
            f"no progress for {stalled_for:.0f} s although messages wait after positions "
            f"{dict(positions)}"
        )
    return None


class ProgressWatch:
    """Tracks one consumer's failures in a row and its progress; ``reason`` says if stuck."""

    def __init__(
        self,
        *,
        stuck_failures: int = STUCK_FAILURES,
        stuck_after_s: float = STUCK_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stuck_failures = stuck_failures
        self.stuck_after_s = stuck_after_s
        self.clock = clock
        self.failures = 0
        self.last_error: str | None = None
        self._positions: dict[int, int] = {}
        self._stalled_since: float | None = None

    def failed(self, error: str) -> None:
        """Count one failed attempt."""
        self.failures += 1
        self.last_error = error[:500]

    def succeeded(self) -> None:
        """An attempt went through: the failures in a row start again from 0."""
        self.failures = 0

    def observe(self, positions: Mapping[int, int], *, waiting: bool) -> None:
        """Note the positions (partition -> next offset) and whether messages wait after
        them; a stall starts when they wait and the positions did not move."""
        positions = dict(positions)
        if not waiting or positions != self._positions:
            self._stalled_since = None
        elif self._stalled_since is None:
            self._stalled_since = self.clock()
        self._positions = positions

    @property
    def reason(self) -> str | None:
        """Why the consumer counts as stuck, or None while it is healthy."""
        stalled_for = None
        if self._stalled_since is not None:
            stalled_for = self.clock() - self._stalled_since
        return stuck_reason(
            failures=self.failures,
            last_error=self.last_error,
            stalled_for=stalled_for,
            positions=self._positions,
            stuck_failures=self.stuck_failures,
            stuck_after_s=self.stuck_after_s,
        )


class StuckConsumers:
    """The consumers of one process, by topic: which are stuck now (for ``/readyz``)."""

    def __init__(self) -> None:
        self._reasons: dict[str, Callable[[], str | None]] = {}

    def watch(self, topic: str, reason: Callable[[], str | None]) -> None:
        """Report the consumer of ``topic``; ``reason()`` is None while it is healthy."""
        self._reasons[topic] = reason

    def stuck(self) -> dict[str, str]:
        """Topic -> reason, for every watched consumer that is stuck now."""
        reasons = {topic: reason() for topic, reason in self._reasons.items()}
        return {topic: reason for topic, reason in reasons.items() if reason is not None}

    def readyz_fields(self) -> dict[str, object]:
        """What ``/readyz`` adds: ``stuck_consumers`` (topic -> reason)."""
        return {"stuck_consumers": self.stuck()}
