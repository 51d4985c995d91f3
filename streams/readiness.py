"""Readiness of the stream worker: the consumer joined its group and owns the inputs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import faust
from faust.types import TP

__all__ = ["WorkerReadiness"]


class WorkerReadiness:
    """Ready once partitions of every input topic are assigned and table recovery ended.

    Follows the App's rebalance signals; not ready again while a rebalance runs.
    """

    def __init__(self, app: faust.App, input_topics: Iterable[str]) -> None:
        self.app = app
        self.input_topics = frozenset(input_topics)
        self._assigned: frozenset[TP] = frozenset()
        self._recovered = False
        app.on_partitions_assigned.connect(self._on_assigned)
        app.on_partitions_revoked.connect(self._on_revoked)
        app.on_rebalance_complete.connect(self._on_rebalance_complete)

    def is_ready(self) -> bool:
        """True when the worker consumes every input topic and its tables are recovered."""
        assigned_topics = {tp.topic for tp in self._assigned}
        return self._recovered and not self.app.rebalancing and self.input_topics <= assigned_topics

    async def _on_assigned(self, sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        self._assigned = frozenset(assigned)

    async def _on_revoked(self, sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        self._recovered = False

    async def _on_rebalance_complete(self, sender: Any, **kwargs: Any) -> None:
        self._recovered = True
