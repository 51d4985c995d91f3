"""``topcoins dev`` as a person runs it: the summary, text logs, Ctrl-C, a busy port."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import _clean_env
from tests.e2e.helpers import DEPTH
from topcoins.brokers import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TEXT_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR) ")


def _dev_env(tmp_path: Path, web_port: int) -> dict[str, str]:
    temp = tmp_path / "tmp"
    temp.mkdir()
    return _clean_env() | {"WEB_PORT": str(web_port), "PYTHONUNBUFFERED": "1", "TMPDIR": str(temp)}


def test_topcoins_dev_prints_a_usable_summary_logs_text_and_stops_cleanly(broker, tmp_path):
    """The README's one command: broker, emulator, producers, worker, web; Ctrl-C stops all,
    the broker last, and leaves nothing behind in the temp folder."""
    web_port = free_port()
    env = _dev_env(tmp_path, web_port)
    kind = broker.kind if broker.kind != "external" else "tansu"
    log_path = tmp_path / "dev.log"
    with (
        log_path.open("wb") as log,
        subprocess.Popen(
            [sys.executable, "-m", "topcoins", "dev", "--broker", kind],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        ) as process,
    ):
        try:
            summary = _read_summary(process)
            _check_summary(summary, web_port)
            children = _children(process.pid)
            assert len(children) >= 6  # broker, emulator, pricing, ranking, worker, web
            logged_before_stop = log_path.read_text().splitlines()
            os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
            assert process.wait(60) == 0
            time.sleep(0.5)
            assert [pid for pid in children if _alive(pid)] == []
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    lines = log_path.read_text().splitlines()
    assert [line for line in logged_before_stop if not TEXT_LINE.match(line)] == []
    at_stop = lines[len(logged_before_stop) :]
    # Clients stop while the broker still runs: no reconnect errors, no tracebacks.
    assert [line for line in at_stop if not TEXT_LINE.match(line) or " ERROR " in line] == []
    assert len(at_stop) < 20, at_stop
    assert os.listdir(env["TMPDIR"]) == []


def _read_summary(process: subprocess.Popen) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].strip().startswith("stop"):
        line = process.stdout.readline()  # blocks until the summary (or exit)
        assert line, f"topcoins dev exited ({process.poll()}) before its summary: {lines}"
        lines.append(line.rstrip("\n"))
    return lines


def _check_summary(lines: list[str], web_port: int) -> None:
    text = "\n".join(lines)
    assert lines[0] == f"topcoins is serving at http://localhost:{web_port}/?limit=200"
    body = httpx.get(f"http://localhost:{web_port}/?limit=200", timeout=10).json()
    assert len(body["data"]) == DEPTH
    assert f"http://localhost:{web_port}/status" in text
    assert re.search(r"every 5 s, stale after 25 s", text)
    # The broker line is ready to paste, and the README's example consumer works with it.
    [bootstrap] = re.findall(r"export KAFKA_BOOTSTRAP_SERVERS=(\S+)", text)
    consumer = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "example_consumer.py"), "--bootstrap", bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert consumer.returncode == 0, consumer.stderr
    assert len(consumer.stdout.splitlines()) == 11
    assert "e-" not in consumer.stdout.split("\n", 1)[1]
    # The fault examples, pasted into a shell, make CoinMarketCap fail and restore it.
    [emulator] = re.findall(r"(http://\S+)/_emulator/state", text)
    fail, restore = (line.split(": ", 1)[1].strip() for line in lines if "curl" in line)
    subprocess.run(["sh", "-c", fail], check=True, capture_output=True, timeout=10)
    faults = httpx.get(f"{emulator}/_emulator/faults", timeout=10).json()["faults"]
    assert faults["coinmarketcap"]["mode"] == "server_error"
    subprocess.run(["sh", "-c", restore], check=True, capture_output=True, timeout=10)
    assert httpx.get(f"{emulator}/_emulator/faults", timeout=10).json()["faults"] == {
        "coinmarketcap": None,
        "cryptocompare": None,
    }


def test_topcoins_dev_refuses_a_busy_web_port_in_one_line_before_starting(tmp_path):
    with socket.socket() as other_web:
        other_web.bind(("127.0.0.1", 0))
        other_web.listen()
        port = other_web.getsockname()[1]
        env = _dev_env(tmp_path, port)
        result = subprocess.run(
            [sys.executable, "-m", "topcoins", "dev"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"topcoins dev could not start: WEB_PORT {port} is already in use on 127.0.0.1 "
        "(another topcoins dev?): stop that process or set WEB_PORT to a free port"
    ]
    assert os.listdir(env["TMPDIR"]) == []


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"
