"""The start/stop lifecycle every connection-holding object in topcoins shares."""

from __future__ import annotations

import enum
from types import TracebackType
from typing import Self

__all__ = ["AsyncLifecycle", "LifecycleState"]


class LifecycleState(enum.Enum):
    """Where an ``AsyncLifecycle`` is: not started yet, started, or stopped for good."""

    NEW = "new"
    STARTED = "started"
    STOPPED = "stopped"


class AsyncLifecycle:
    """Base for objects with ``async start()`` and ``async stop()``: ``async with`` runs both.

    Subclasses implement ``_start()`` and ``_stop()``; the base guards them: ``start()``
    while started does nothing, ``start()`` once stopped raises (create a new object),
    ``stop()`` is safe to call twice. Leaving the block stops, even on error. Methods
    that need what ``start()`` acquired call ``_check_started()`` first.
    """

    lifecycle: LifecycleState = LifecycleState.NEW

    async def start(self) -> None:
        """Acquire the resources (connect, bind, spawn); refused once stopped."""
        if self.lifecycle is LifecycleState.STOPPED:
            raise RuntimeError(self._stopped_message())
        if self.lifecycle is LifecycleState.STARTED:
            return
        await self._start()
        self.lifecycle = LifecycleState.STARTED

    async def stop(self) -> None:
        """Release the resources; safe to call twice."""
        if self.lifecycle is LifecycleState.STOPPED:
            return
        self.lifecycle = LifecycleState.STOPPED
        await self._stop()

    def _check_started(self) -> None:
        """Raise ``RuntimeError`` unless started (not yet, or stopped for good)."""
        if self.lifecycle is LifecycleState.NEW:
            raise RuntimeError(
                f"this {type(self).__name__} is not started; use it inside async with"
            )
        if self.lifecycle is LifecycleState.STOPPED:
            raise RuntimeError(self._stopped_message())

    def _stopped_message(self) -> str:
        return f"this {type(self).__name__} was stopped; create a new one"

    async def _start(self) -> None:
        """What ``start()`` does the first time."""
        raise NotImplementedError

    async def _stop(self) -> None:
        """What ``stop()`` does the first time (also after a failed or no ``start()``)."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
