"""A stuck agent (``streams/progress.py``) shows in the worker's ``/readyz`` and metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import types

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tests.streams.snapshots import ranking_from_fixture
from topcoins.schemas import codec
from topcoins.settings import Settings
from topcoins.streams.app import build_worker
from topcoins.streams.main import ops_server
from topcoins.streams.updater import Outcome

RANKING = ranking_from_fixture("cc_totalvolfull_2020-05-04_page0_limit10.json")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def registry():
    return CollectorRegistry()


@pytest.fixture
def settings():
    return Settings(topic_prefix="unit", ops_host="127.0.0.1", worker_ops_port=free_port())


@pytest.fixture
def worker(settings, registry):
    return build_worker(settings, registry=registry)


@pytest.fixture
def refusing_top(worker, monkeypatch):
    """The top topic refuses every write until ``state["refuse"]`` is False."""
    state = {"refuse": True}
    writer = worker.updater.writer
    real_top = writer.top

    async def send(**kwargs: object) -> asyncio.Future:
        if state["refuse"]:
            raise RuntimeError("top topic refused the write")
        delivered = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    monkeypatch.setattr(writer, "top", types.SimpleNamespace(send=send))
    yield state
    monkeypatch.setattr(writer, "top", real_top)


async def put(agent, snapshot_id: str) -> Outcome:
    value = codec.encode(dataclasses.replace(RANKING, snapshot_id=snapshot_id))
    event = await agent.put(value, key=b"cryptocompare")
    return agent.results[event.message.offset]


def stuck_gauge(registry, topic: str) -> float | None:
    return registry.get_sample_value("topcoins_worker_consumer_stuck", {"topic": topic})


async def test_an_agent_whose_messages_keep_failing_is_named_in_the_workers_readyz(
    worker, settings, registry, refusing_top
):
    topic = worker.topics.ranks.get_topic_name()
    async with worker.agents.ranks.test_context() as ranks:
        for n in range(3):
            assert await put(ranks, f"ranking-{n}") is Outcome.FAILED
        async with ops_server(settings, worker), httpx.AsyncClient() as http:
            ready = await http.get(f"http://127.0.0.1:{settings.worker_ops_port}/readyz")
        assert stuck_gauge(registry, topic) == 1

        refusing_top["refuse"] = False
        assert await put(ranks, "ranking-ok") is Outcome.PUBLISHED
        assert worker.progress.stuck() == {}
        assert stuck_gauge(registry, topic) == 0

    # Not ready (no partitions assigned in a test context), and the body names the agent.
    assert ready.status_code == 503
    reason = ready.json()["stuck_consumers"][topic]
    assert "3 failed attempts in a row" in reason and "top topic refused" in reason
    assert list(ready.json()["stuck_consumers"]) == [topic]


async def test_an_agent_that_does_not_advance_while_messages_wait_is_stuck(
    worker, registry, refusing_top, monkeypatch
):
    refusing_top["refuse"] = False
    topic = worker.topics.ranks.get_topic_name()
    progress = worker.progress
    progress.watches[topic].stuck_after_s = 0.05
    monkeypatch.setattr(progress, "_highwater", lambda tp: 9)  # the last fetch saw up to 9
    async with worker.agents.ranks.test_context() as ranks:
        assert await put(ranks, "ranking-1") is Outcome.PUBLISHED  # at offset 0
        assert progress.stuck() == {}  # the stall starts now
        await asyncio.sleep(0.06)
        reason = progress.stuck()[topic]
    assert "although messages wait after positions {0: 1}" in reason
    assert stuck_gauge(registry, topic) == 1
