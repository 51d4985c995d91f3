"""``AtAdmission`` and ``GET /?at=`` under load: one runs, a bounded number wait, the rest
get 503 ``history_busy`` at once, and a slow one gets 503 ``history_timeout``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.web.factories import BUILD, SAMPLE_ROWS, join_of
from tests.web.replicas import StaticReplica
from topcoins.domain import JoinResult
from topcoins.settings import Settings
from topcoins.web import admission as admission_module
from topcoins.web.admission import AtAdmission
from topcoins.web.app import create_app
from topcoins.web.errors import HistoryBusy
from topcoins.web.view import TopListView


class GatedHistory:
    """A history reader that answers once ``gate`` is set, counting the concurrent calls."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.running = 0
        self.most_running = 0

    async def presented_at(self, at: datetime, present: Callable[[JoinResult], Any]) -> Any:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.gate.wait()
            return present(join_of(SAMPLE_ROWS))
        finally:
            self.running -= 1


async def test_past_the_waiting_limit_requests_are_refused_at_once() -> None:
    admission = AtAdmission(max_waiting=2, timeout_s=5)
    gate = asyncio.Event()

    async def work() -> str:
        await gate.wait()
        return "answer"

    admitted = [asyncio.create_task(admission.run(work)) for _ in range(3)]
    await asyncio.sleep(0)
    with pytest.raises(HistoryBusy) as refused:
        await admission.run(work)
    assert refused.value.code == "history_busy"
    assert refused.value.headers["Retry-After"] in {"1", "2", "3"}
    gate.set()
    assert await asyncio.gather(*admitted) == ["answer"] * 3
    assert (admission.admitted, admission.refused) == (0, 1)


async def test_admitted_requests_start_at_most_per_second_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds
        await real_sleep(0)

    monkeypatch.setattr(admission_module.asyncio, "sleep", fake_sleep)
    admission = AtAdmission(max_waiting=8, timeout_s=5, per_second=20, monotonic=lambda: now[0])
    started: list[float] = []

    async def work() -> None:
        started.append(now[0])

    await asyncio.gather(*(admission.run(work) for _ in range(4)))
    assert started == pytest.approx([100.0, 100.05, 100.1, 100.15])
    assert slept == [0.05, 0.05, 0.05]
    now[0] += 1.0  # a quiet second: the next one starts at once
    await admission.run(work)
    assert started[-1] == pytest.approx(101.15) and len(slept) == 3


async def test_the_pace_is_not_a_refusal_past_the_queue_it_is() -> None:
    admission = AtAdmission(max_waiting=0, timeout_s=5, per_second=1000)
    gate = asyncio.Event()

    async def work() -> None:
        await gate.wait()

    running = asyncio.create_task(admission.run(work))
    await asyncio.sleep(0)
    refusal = admission.refusal()
    assert refusal is not None and refusal.code == "history_busy"
    assert admission.refused == 1
    gate.set()
    await running
    assert admission.refusal() is None


def test_a_rate_that_is_not_positive_is_refused() -> None:
    for rate in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="per_second"):
            AtAdmission(max_waiting=1, timeout_s=1, per_second=rate)


async def test_a_request_past_the_time_limit_is_cancelled_with_503() -> None:
    admission = AtAdmission(max_waiting=1, timeout_s=0.05)
    cancelled = asyncio.Event()

    async def never() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(HistoryBusy) as timed_out:
        await admission.run(never)
    assert timed_out.value.code == "history_timeout"
    assert timed_out.value.headers["Retry-After"] == "5"
    assert cancelled.is_set() and admission.admitted == 0


async def test_the_app_runs_one_at_request_at_a_time_and_503s_the_overflow(
    sample_view: TopListView,
) -> None:
    history = GatedHistory()
    settings = Settings(at_max_waiting=3)
    app = create_app(settings, StaticReplica(sample_view), build=BUILD, history=history)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://web") as client:
        moments = [f"2024-05-01T12:00:{second:02d}Z" for second in range(10)]
        asks = [asyncio.create_task(client.get("/", params={"at": m})) for m in moments]
        while history.running == 0:
            await asyncio.sleep(0.001)
        live = await client.get("/?limit=3")  # the live list does not wait for them
        history.gate.set()
        answers = await asyncio.gather(*asks)
    assert live.status_code == 200
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 4 + [503] * 6
    busy = next(answer for answer in answers if answer.status_code == 503)
    assert busy.json()["error"] == "history_busy"
    assert busy.headers["Retry-After"] in {"1", "2", "3"}
    assert history.most_running == 1
