"""Whether the worker's agents are stuck (``topcoins.stuck``): one watch per input topic.

An agent is stuck after ``STUCK_FAILURES`` messages in a row whose handling raised (each
is still logged, counted and skipped), or when its position has not moved for
``STUCK_AFTER_S`` although the consumer's last fetch saw messages after it. Progress is
checked when asked (each ``/readyz`` request and ``/metrics`` scrape), so a stall counts
from the first check that sees messages waiting. The worker's ``/readyz`` names a stuck
agent's topic under ``stuck_consumers`` and ``topcoins_worker_consumer_stuck{topic}`` is
1; readiness itself does not change (restarting the worker would not unstick it).
"""

from __future__ import annotations

from collections.abc import Iterable

import faust
from faust.types import TP
from faust.types.tuples import Message

from topcoins.streams.metrics import WorkerMetrics
from topcoins.stuck import STUCK_AFTER_S, STUCK_FAILURES, ProgressWatch

__all__ = ["AgentProgress"]


class AgentProgress:
    """Follows what the agents handle, per input topic, and says which are stuck."""

    def __init__(
        self,
        app: faust.App,
        topics: Iterable[str],
        metrics: WorkerMetrics,
        *,
        stuck_failures: int = STUCK_FAILURES,
        stuck_after_s: float = STUCK_AFTER_S,
    ) -> None:
        self.app = app
        self.watches = {
            topic: ProgressWatch(stuck_failures=stuck_failures, stuck_after_s=stuck_after_s)
            for topic in sorted(topics)
        }
        self._positions: dict[str, dict[int, int]] = {topic: {} for topic in self.watches}
        for topic in self.watches:
            metrics.consumer_stuck.labels(topic).set_function(
                lambda topic=topic: 0 if self.reason(topic) is None else 1
            )

    def handled(self, message: Message) -> None:
        """An agent handled ``message`` (used or skipped it)."""
        if message.topic in self.watches:
            self.watches[message.topic].succeeded()
            self._advance(message)

    def failed(self, message: Message, error: str) -> None:
        """Handling ``message`` raised; it was skipped."""
        if message.topic in self.watches:
            self.watches[message.topic].failed(error)
            self._advance(message)

    def reason(self, topic: str) -> str | None:
        """Why the agent of ``topic`` counts as stuck, or None while it is healthy."""
        positions = self._positions[topic]
        waiting = any(
            (highwater := self._highwater(TP(topic, partition))) is not None
            and position < highwater
            for partition, position in positions.items()
        )
        watch = self.watches[topic]
        watch.observe(positions, waiting=waiting)
        return watch.reason

    def stuck(self) -> dict[str, str]:
        """Topic -> reason, for every agent that is stuck now."""
        reasons = {topic: self.reason(topic) for topic in self.watches}
        return {topic: reason for topic, reason in reasons.items() if reason is not None}

    def readyz_fields(self) -> dict[str, object]:
        """What the worker's ``/readyz`` adds: ``stuck_consumers`` (topic -> reason)."""
        return {"stuck_consumers": self.stuck()}

    def _advance(self, message: Message) -> None:
        """Note the agent's new position: any stall ends here."""
        positions = self._positions[message.topic]
        positions[message.partition] = message.offset + 1
        self.watches[message.topic].observe(positions, waiting=False)

    def _highwater(self, tp: TP) -> int | None:
        try:
            return self.app.consumer.highwater(tp)
        except Exception:  # not started (test context), partition revoked mid-rebalance, ...
            return None
