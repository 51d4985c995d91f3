"""GET /stream on the real stack: a price change at the emulator reaches a stream client."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import CHANGE_DEADLINE_SECONDS, change_a_price, emulator

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def events(response: httpx.Response) -> Iterator[tuple[str, dict]]:
    """(id, parsed data) of each event of an open ``GET /stream`` response."""
    event_id, data = None, None
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = line.removeprefix("id: ")
        elif line.startswith("data: "):
            data = json.loads(line.removeprefix("data: "))
        elif line == "" and event_id is not None and data is not None:
            yield event_id, data
            event_id, data = None, None


def test_a_price_change_at_the_emulator_reaches_a_stream_client(stack):
    timeout = httpx.Timeout(10, read=CHANGE_DEADLINE_SECONDS)
    with httpx.stream("GET", f"{stack.web_url}/stream?limit=200", timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        stream = events(response)
        first_id, first = next(stream)
        assert len(first["data"]) == 200 and "stale" in first["meta"]
        emulator(stack, "pause", {})  # no drift: the new price is served exactly
        symbol, _ = change_a_price(stack, 4321.125)
        deadline = time.monotonic() + CHANGE_DEADLINE_SECONDS
        for event_id, body in stream:
            prices = {item["symbol"]: item["price_usd"] for item in body["data"]}
            if prices.get(symbol) == 4321.125:
                assert event_id != first_id
                break
            assert time.monotonic() < deadline, f"{symbol} never reached 4321.125 on the stream"


def test_the_fanout_benchmark_runs_with_50_streams():
    """A smoke run of benchmarks/stream_fanout.py; the 1000-stream figures are in the README."""
    command = [
        sys.executable, str(ROOT / "benchmarks" / "stream_fanout.py"),
        "--streams", "50", "--generations", "4", "--interval", "0.3",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "streams: 50 (limit=200), errors: none" in result.stdout
    assert "generations: 4, deliveries missed: 0" in result.stdout
    assert "KiB per stream" in result.stdout and "GET / -> last stream" in result.stdout
