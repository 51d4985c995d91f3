"""``ProcessOffload``: runs the CPU work of ``GET /?at=`` in a worker process.

Decoding a raw price snapshot and joining it (50-100 ms of pure Python) would block the
event loop, and so every live request. A thread does not help: it holds the GIL, and the
loop then waits up to the interpreter's switch interval (5 ms) at every wake-up
(``benchmarks/at_load.py`` measures it). So the web process hands
``topcoins.history.decode_join_and_present`` its raw bytes in a one-process pool and gets
back the list with its rows already encoded (a ``rendered.PastList``: bytes and a few
values, unpickled in some 20 microseconds; the join itself would take 0.25 ms to unpickle
and 1.7 ms more to encode on the event loop).

The worker process runs at the lowest CPU priority (``nice`` +19): on a busy machine the
live list is scheduled first and ``at`` answers take what is left (``benchmarks/at_load.py``:
a live p99 ratio of 1.49-1.74 against 1.57-2.00 at +10).
The worker process starts (``spawn``: no fork of a process with a running event loop) on
the first call, so a web process that is never asked ``at`` never starts one; the first
call pays for it (about a second). A worker that dies is replaced, and the request that
was running in it gets ``HistoryReadError`` (503 for the client).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from topcoins.history import HistoryReadError
from topcoins.lifecycle import AsyncLifecycle, LifecycleState

__all__ = ["WORKER_NICENESS", "ProcessOffload"]

logger = logging.getLogger(__name__)

WORKER_NICENESS = 19  # added to the web process's niceness (the kernel caps the sum at 19)


def _lower_priority() -> None:
    """Run this worker process below its parent's CPU priority."""
    try:
        os.nice(WORKER_NICENESS)
    except OSError as exc:  # not allowed here: the worker runs at its parent's priority
        logger.warning("could not lower the history worker's priority", exc_info=exc)


class ProcessOffload(AsyncLifecycle):
    """``await offload(function, *args)`` runs ``function(*args)`` in a worker process."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_lower_priority)

    async def _start(self) -> None:
        """Accept calls (the worker process starts on the first one)."""

    async def _stop(self) -> None:
        """Stop the worker process."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    async def __call__(self, function: Callable[..., Any], *args: Any) -> Any:
        if self.lifecycle is not LifecycleState.STARTED:
            raise HistoryReadError("the history worker process is not running")
        pool = self._pool
        if pool is None:
            pool = self._pool = self._new_pool()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
        except BrokenProcessPool as exc:
            logger.error("the history worker process died; the next call starts a new one")
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False)
            raise HistoryReadError("the history worker process died; retry") from exc
