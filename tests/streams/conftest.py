"""Fixtures of the worker's agent tests: a worker per test on its own registry, its
agents in Faust's test context, the top topic recorded (``tests/streams/worker_context.py``)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from tests.streams.worker_context import TopTopicRecorder
from topcoins.settings import Settings
from topcoins.streams.app import build_worker


@pytest.fixture
def registry():
    return CollectorRegistry()


@pytest.fixture
def worker(registry):
    return build_worker(Settings(topic_prefix="unit"), registry=registry)


@pytest.fixture
def top(worker, monkeypatch):
    """Records what the agents send to the top topic."""
    recorder = TopTopicRecorder()
    monkeypatch.setattr(worker.updater.writer, "top", recorder)
    return recorder


@pytest.fixture
async def ranks(worker, top):
    async with worker.agents.ranks.test_context() as agent:
        yield agent


@pytest.fixture
async def prices(worker, top):
    async with worker.agents.prices.test_context() as agent:
        yield agent


@pytest.fixture
def highwater(worker, monkeypatch):
    """Sets the high watermark the agents see for every partition (None: unknown)."""
    marks = {"value": None}
    monkeypatch.setattr(worker.app.consumer, "highwater", lambda tp: marks["value"])
    return marks
