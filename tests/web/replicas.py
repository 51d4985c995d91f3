"""``StaticReplica``: a replica that serves views from memory, for the web tests and the
benchmarks (``benchmarks/web_hot_path.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from topcoins.lifecycle import AsyncLifecycle
from topcoins.schemas.records import ProducerStatus
from topcoins.web.replica import ReplicaStats, ViewHolder
from topcoins.web.view import TopListView

__all__ = ["StaticReplica"]


class StaticReplica(AsyncLifecycle):
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
        self.running = running
        self.statuses: Mapping[str, ProducerStatus] = MappingProxyType(
            {status.provider: status for status in statuses}
        )
        self._holder = ViewHolder(self.stats)
        if view is not None:
            self.publish(view)

    @property
    def view(self) -> TopListView | None:
        return self._holder.view

    @property
    def caught_up(self) -> bool:
        return self._holder.view is not None

    @property
    def consumers(self) -> Mapping[str, str | None]:
        return dict(self.stuck)

    def publish(self, view: TopListView) -> None:
        """Serve ``view`` from now on."""
        self.stats.generations += 1
        self._holder.publish(view)

    def publish_status(self, status: ProducerStatus) -> None:
        """Make ``status`` its provider's latest status."""
        self.statuses = MappingProxyType({**self.statuses, status.provider: status})

    async def wait_for_view(self, after: TopListView | None = None) -> TopListView:
        return await self._holder.wait_for_view(after)

    async def start(self) -> None:
        """Nothing to start: unlike a real replica, it may serve one app after another."""

    async def stop(self) -> None:
        """Nothing to stop."""
