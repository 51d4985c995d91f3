"""``AtAdmission``: how many ``GET /?at=`` requests a web process takes on, and for how long.

One ``at`` request runs at a time (the history reader answers one question at a time
anyway), and they start at least ``1 / per_second`` apart; ``max_waiting`` more may wait
for their turn, and any further one is refused at once with 503 ``history_busy`` and
``Retry-After`` of 1 to 3 seconds, drawn at random so that the refused clients do not all
come back in the same instant. Each admitted request has ``timeout_s`` in all, waiting
included; past it, it is cancelled and answered 503 ``history_timeout``.

So a flood of distinct moments costs the process a bounded queue and a bounded rate of
work, however fast each answer is (most come from the reader's caches in well under a
millisecond, and clients that ask again as soon as they are answered would otherwise
take the event loop from the live list: ``benchmarks/at_load.py``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from topcoins.web.errors import RETRY_AFTER_SECONDS, HistoryBusy

__all__ = ["BUSY_RETRY_AFTER_SECONDS", "AtAdmission"]

T = TypeVar("T")

# A refused request may come back soon (the queue drains in about a second), but not all
# of them at once: each is told a whole number of seconds in this range.
BUSY_RETRY_AFTER_SECONDS = (1, 3)


class AtAdmission:
    """``await admission.run(work)``: ``work()`` once admitted, within the time limit."""

    def __init__(
        self,
        max_waiting: int,
        timeout_s: float,
        per_second: float = float("inf"),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_waiting < 0 or timeout_s <= 0 or not per_second > 0:
            raise ValueError("max_waiting must be >= 0, timeout_s and per_second > 0")
        self.max_waiting = max_waiting
        self.timeout_s = timeout_s
        self.per_second = per_second
        self.admitted = 0  # running or waiting now
        self.refused = 0  # since start: busy
        self.timed_out = 0  # since start
        self._turn = asyncio.Lock()
        self._monotonic = monotonic
        self._next_start = monotonic()  # the earliest the next admitted request may start

    def refusal(self) -> HistoryBusy | None:
        """The 503 for one more request now (counted as refused), or None if it would be
        admitted. Cheap, so a flood can be turned away before its requests are parsed."""
        if self.admitted <= self.max_waiting:
            return None
        self.refused += 1
        retry_after = random.randint(*BUSY_RETRY_AFTER_SECONDS)
        return HistoryBusy(
            "history_busy",
            f"{self.admitted} `at` requests are already being answered or waiting on this "
            f"server; retry in {retry_after} s",
            retry_after,
        )

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work()`` after the requests admitted before it; raises ``HistoryBusy``."""
        refused = self.refusal()
        if refused is not None:
            raise refused
        self.admitted += 1
        try:
            async with asyncio.timeout(self.timeout_s), self._turn:
                await self._paced()
                return await work()
        except TimeoutError as exc:
            self.timed_out += 1
            raise HistoryBusy(
                "history_timeout",
                f"the list for this moment took longer than {self.timeout_s:g} s to compute; "
                f"retry in {RETRY_AFTER_SECONDS} seconds",
                RETRY_AFTER_SECONDS,
            ) from exc
        finally:
            self.admitted -= 1

    async def _paced(self) -> None:
        """Wait until ``1 / per_second`` has passed since the previous request started."""
        now = self._monotonic()
        start = max(now, self._next_start)
        self._next_start = start + 1 / self.per_second
        if start > now:
            await asyncio.sleep(start - now)
