"""End-to-end fixtures: one real broker per broker kind for the whole run, a fresh stack per test.

Every e2e test runs once per broker kind in ``TOPCOINS_E2E_BROKERS`` (comma-separated;
default ``tansu,apache-kafka``). ``KAFKA_BOOTSTRAP_SERVERS`` points the tests at a broker
that is already running instead (it then counts as the only kind, named ``external``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from topcoins.brokers import BrokerError, LocalBroker, make_broker
from topcoins.dev import DevStack

EXTERNAL = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
KINDS = (
    ["external"]
    if EXTERNAL
    else [k.strip() for k in os.environ.get("TOPCOINS_E2E_BROKERS", "tansu,apache-kafka").split(",")]
)

# Fast polls and drift so that changes show within seconds; short timeouts keep failures quick.
E2E_ENV = {
    "PRICING_POLL_SECONDS": "1",
    "RANKING_POLL_SECONDS": "1",
    "LOG_LEVEL": "INFO",
}


class Broker:
    """The broker the e2e tests of one kind share."""

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
        pytest.fail(f"could not start the {kind} broker: {exc}")
    try:
        yield Broker(kind, local.bootstrap_servers, local)
    finally:
        local.cleanup()


def _clean_env() -> dict[str, str]:
    """The test process' environment without any topcoins setting a developer may have set."""
    from topcoins.settings import ENV_DOCS

    names = {spec.name for spec in ENV_DOCS.values()}
    return {k: v for k, v in os.environ.items() if k not in names and not k.startswith("EMULATOR_")}


@pytest.fixture
def stack_factory(broker: Broker, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator:
    """``stack_factory(**env)`` starts every component as its own process on a fresh topic set."""
    stacks: list[DevStack] = []

    def start(**extra_env: str) -> DevStack:
        from topcoins.brokers import free_port

        env = {
            **_clean_env(),
            **E2E_ENV,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "TOPIC_PREFIX": f"e2e-{uuid.uuid4().hex[:10]}",
            "WEB_PORT": str(free_port()),
            **extra_env,
        }
        stack = DevStack(env, log_dir=tmp_path / f"logs-{len(stacks)}", emulator_port=free_port())
        stacks.append(stack)
        stack.start()
        return stack

    yield start
    for stack in stacks:
        stack.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        for log in sorted(tmp_path.glob("logs-*/*.log")):
            tail = log.read_text(errors="replace").splitlines()[-30:]
            print(f"----- {log.relative_to(tmp_path)} (last 30 lines)")
            print("\n".join(tail))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


@pytest.fixture
def stack(stack_factory) -> DevStack:
    """The whole service, ready to serve."""
    started = stack_factory()
    assert started.wait_ready(120), "the web service did not become ready within 120 s"
    return started


def get_json(url: str) -> dict:
    """GET a URL and parse its JSON body (any status)."""
    return httpx.get(url, timeout=10).json()
