"""Shared test fixtures: recorded provider responses and real brokers.

Tests that need Kafka take the ``broker`` fixture: one broker per kind for the whole run,
each such test running once per kind in ``TOPCOINS_TEST_BROKERS`` (comma-separated;
default ``tansu,apache-kafka``). ``KAFKA_BOOTSTRAP_SERVERS`` points them at a broker that
is already running instead (it is then the only kind, named ``external``). Taking the fixture
marks a test ``e2e``, so ``-m "not e2e"`` leaves it out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from topcoins.brokers import BrokerError, LocalBroker, make_broker

FIXTURES = Path(__file__).parent / "fixtures" / "upstream"


def load_fixture(name: str) -> Any:
    """Parse one recorded provider response from ``tests/fixtures/upstream``."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def fixture_json() -> Any:
    """``fixture_json(name)`` returns a parsed recorded response."""
    return load_fixture


def cannot_run(reason: str) -> None:
    """Skip the calling test for ``reason``; under ``CI=true`` fail instead, since
    ``scripts/tools`` installs every tool there."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def missing_tool(what: str, hint: str) -> None:
    """Skip (or under ``CI=true`` fail) the calling test because ``what`` is not installed."""
    cannot_run(f"{what} is not installed: {hint}")


ALL_KINDS = "tansu,apache-kafka"
EXTERNAL = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
KINDS = (
    ["external"]
    if EXTERNAL
    else [kind.strip() for kind in os.environ.get("TOPCOINS_TEST_BROKERS", ALL_KINDS).split(",")]
)


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test on a real broker is ``e2e``."""
    for item in items:
        if "broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


class Broker:
    """The broker the tests of one kind share."""

    def __init__(self, kind: str, bootstrap_servers: str, local: LocalBroker | None) -> None:
        self.kind = kind
        self.bootstrap_servers = bootstrap_servers
        self.local = local


@pytest.fixture(scope="session", params=KINDS)
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """A running broker of one kind, for the whole session."""
    kind = request.param
    if kind == "external":
        yield Broker(kind, EXTERNAL, None)
        return
    local = make_broker(kind)
    try:
        local.start()
    except BrokerError as exc:
        cannot_run(f"could not start the {kind} broker: {exc}")
    try:
        yield Broker(kind, local.bootstrap_servers, local)
    finally:
        local.cleanup()


@pytest.fixture
def bootstrap_servers(broker: Broker) -> str:
    """``host:port`` of the session's broker."""
    return broker.bootstrap_servers


@pytest.fixture
def spans() -> Iterator[Any]:
    """Tracing on for the test, into an in-memory exporter (yielded); off again after."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from topcoins import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.activate(provider)
    yield exporter
    tracing.activate(None)
