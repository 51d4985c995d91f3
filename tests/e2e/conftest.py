"""End-to-end fixtures: a fresh stack of processes per test, on the session's broker.

The ``broker`` fixture (tests/conftest.py) runs every e2e test once per broker kind.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from topcoins.dev import DevStack

# Fast polls so that changes show within seconds.
E2E_ENV = {
    "PRICING_POLL_SECONDS": "1",
    "RANKING_POLL_SECONDS": "1",
    "LOG_LEVEL": "INFO",
}


def _clean_env() -> dict[str, str]:
    """The test process' environment without any topcoins setting a developer may have set."""
    from topcoins.settings import ENV_DOCS

    names = {spec.name for spec in ENV_DOCS.values()}
    return {k: v for k, v in os.environ.items() if k not in names and not k.startswith("EMULATOR_")}


@pytest.fixture
def stack_factory(broker, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator:
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
