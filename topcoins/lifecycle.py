"""The start/stop lifecycle every connection-holding object in topcoins shares."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncLifecycle"]


class AsyncLifecycle:
    """Base for objects with ``async start()`` and ``async stop()``: ``async with`` runs both.

    Subclasses make ``stop()`` safe to call twice; leaving the block stops, even on error.
    """

    async def start(self) -> None:
        """Acquire the resources (connect, bind, spawn)."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Release the resources; safe to call twice."""
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
