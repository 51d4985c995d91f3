"""``ProcessOffload``: the join of ``GET /?at=`` runs in a worker process, which is
replaced when it dies."""

from __future__ import annotations

import os
import signal

import pytest

from tests.streams.snapshots import prices_of, quote, ranked, ranking_of
from topcoins.domain import AliasTable
from topcoins.history import HistoryReadError, decode_and_join
from topcoins.schemas import codec
from topcoins.web.offload import WORKER_NICENESS, ProcessOffload

pytestmark = pytest.mark.e2e  # spawns a process (about 1 s)


async def test_the_join_runs_in_another_process_and_survives_its_death() -> None:
    ranking = ranking_of(ranked(1, "BTC", "Bitcoin"), ranked(2, "ETH", "Ethereum"))
    prices = prices_of(quote(1, "BTC", "Bitcoin", price=60000.0))
    expected = decode_and_join(codec.encode(ranking), codec.encode(prices), AliasTable())
    async with ProcessOffload() as offload:
        worker = await offload(os.getpid)
        assert worker != os.getpid()
        # the live list comes first: the worker runs at a lower CPU priority
        assert await offload(os.nice, 0) == min(19, os.nice(0) + WORKER_NICENESS)
        joined = await offload(
            decode_and_join, codec.encode(ranking), codec.encode(prices), AliasTable()
        )
        assert joined == expected
        assert await offload(decode_and_join, b"\x00junk", None, AliasTable()) == (
            "ranking",
            joined_error(b"\x00junk"),
        )
        with pytest.raises(HistoryReadError, match="died"):
            await offload(os.kill, worker, signal.SIGKILL)
        assert await offload(os.getpid) not in (worker, os.getpid())  # a new worker


def joined_error(raw: bytes) -> str:
    outcome = decode_and_join(raw, None, AliasTable())
    assert isinstance(outcome, tuple)
    return outcome[1]
