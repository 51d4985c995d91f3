"""The worker process: start-up failures exit 1 with one line; the ops server runs as a service."""

from __future__ import annotations

import json
import logging
import socket

import httpx
import pytest

from topcoins.ops import OpsServer
from topcoins.settings import Settings
from topcoins.streams import main
from topcoins.streams.faults import KillAfterRow, KillAfterRows
from topcoins.streams.main import OpsService, armed_fault, run_worker


@pytest.fixture
def restore_logging():
    """``run_worker`` configures process-wide logging; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    names = ("aiokafka", "httpx", "httpcore")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.usefixtures("restore_logging")
def test_unreachable_broker_exits_1_with_a_one_line_reason(monkeypatch, capsys):
    monkeypatch.setattr(main, "BROKER_WAIT_SECONDS", 0.5)
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")

    assert run_worker(settings) == 1

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    failure = [line for line in lines if line["logger"] == "topcoins.streams.main"]
    failure = [line for line in failure if line["level"] == "error"]
    assert len(failure) == 1
    assert failure[0]["msg"].startswith("stream worker cannot start: no Kafka broker answered")
    assert failure[0]["component"] == "stream-worker"


async def test_ops_service_serves_while_running():
    port = free_port()
    service = OpsService(OpsServer("127.0.0.1", port, lambda: True))

    await service.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/readyz")).json() == {"status": "ready"}
    finally:
        await service.stop()

    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await client.get("/healthz")


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("2:3", KillAfterRows(2, 3)),
        (" 1:0 ", KillAfterRows(1, 0)),
        ("row:BTC", KillAfterRow("BTC")),
        ("", None),
    ],
)
def test_the_fault_variable_is_parsed(text, parsed):
    assert armed_fault({"TOPCOINS_TEST_KILL_AFTER_ROWS": text}) == parsed
    assert armed_fault({}) is None


@pytest.mark.parametrize("text", ["2", "a:3", "0:3", "2:-1", "2:3:4", "row:", "row: "])
def test_a_malformed_fault_variable_names_itself(text):
    with pytest.raises(ValueError, match=r"^TOPCOINS_TEST_KILL_AFTER_ROWS: "):
        armed_fault({"TOPCOINS_TEST_KILL_AFTER_ROWS": text})


def test_a_row_fault_fires_in_the_first_generation_writing_that_row():
    fault = KillAfterRow("ETH")
    assert fault.rows_before_exit(1, ["BTC", "SOL"]) is None
    assert fault.rows_before_exit(4, ["BTC", "ETH", "SOL"]) == 2
    assert KillAfterRows(2, 3).rows_before_exit(2, ["BTC"]) == 3
    assert KillAfterRows(2, 3).rows_before_exit(1, ["BTC"]) is None
