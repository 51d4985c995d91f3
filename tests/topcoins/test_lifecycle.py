"""AsyncLifecycle: start once, stop once, never start again after a stop."""

from __future__ import annotations

import pytest

from topcoins.lifecycle import AsyncLifecycle, LifecycleState


class Recorder(AsyncLifecycle):
    def __init__(self) -> None:
        self.events: list[str] = []

    async def _start(self) -> None:
        self.events.append("start")

    async def _stop(self) -> None:
        self.events.append("stop")


class FailsFirstStart(Recorder):
    async def _start(self) -> None:
        await super()._start()
        if self.events == ["start"]:
            raise ConnectionError("no broker")


async def test_start_and_stop_run_once_however_often_called() -> None:
    thing = Recorder()
    async with thing:
        await thing.start()
        assert thing.lifecycle is LifecycleState.STARTED
    await thing.stop()
    assert thing.events == ["start", "stop"]
    assert thing.lifecycle is LifecycleState.STOPPED


async def test_a_stopped_object_refuses_to_start_again() -> None:
    thing = Recorder()
    async with thing:
        pass
    with pytest.raises(RuntimeError, match="this Recorder was stopped; create a new one"):
        await thing.start()
    assert thing.events == ["start", "stop"]


async def test_a_failed_start_can_be_retried_and_is_still_stopped() -> None:
    thing = FailsFirstStart()
    with pytest.raises(ConnectionError):
        await thing.start()
    assert thing.lifecycle is LifecycleState.NEW
    await thing.start()
    await thing.stop()
    assert thing.events == ["start", "start", "stop"]


async def test_leaving_the_block_on_an_error_stops() -> None:
    thing = Recorder()
    with pytest.raises(ValueError, match="boom"):
        async with thing:
            raise ValueError("boom")
    assert thing.events == ["start", "stop"]


async def test_what_needs_the_resources_is_refused_before_start_and_after_stop() -> None:
    thing = Recorder()
    with pytest.raises(RuntimeError, match="this Recorder is not started; use it inside async"):
        thing._check_started()
    async with thing:
        thing._check_started()
    with pytest.raises(RuntimeError, match="this Recorder was stopped; create a new one"):
        thing._check_started()
