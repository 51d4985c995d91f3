"""The whole dataflow with every component as its own process: emulator -> Kafka -> HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import (
    CHANGE_DEADLINE_SECONDS,
    DEPTH,
    emulator,
    expected_top,
    wait_until_served,
)
from topcoins.brokers import free_port

pytestmark = pytest.mark.e2e


def test_output_matches_the_emulator_and_follows_rank_and_price_changes(stack):
    emulator(stack, "pause", {})
    truth = expected_top(emulator(stack, "state"))
    wait_until_served(stack, lambda served: served == truth)

    # A rank change: the asset at #150 gets the largest volume and must become #1.
    ranking = emulator(stack, "state")["ranking"]
    mover = ranking[149]["symbol"]
    emulator(
        stack,
        "assets/volume",
        {"symbol": mover, "volume_24h_usd": ranking[0]["volume_24h_usd"] * 3},
    )
    # A price change on the #10 asset that has a CoinMarketCap price.
    priced = next(item for item in ranking[10:] if item["cmc_id"] is not None)
    emulator(stack, "assets/price", {"cmc_id": priced["cmc_id"], "price_usd": 12345.678})
    # The asset at #200 gets almost no volume and must leave the ranked depth.
    leaver = ranking[DEPTH - 1]["symbol"]
    emulator(stack, "assets/volume", {"symbol": leaver, "volume_24h_usd": 1.0})

    truth = expected_top(emulator(stack, "state"))
    assert truth[0][1] == mover
    assert leaver not in {symbol for _, symbol, _ in truth}
    assert (priced["symbol"], 12345.678) in {(s, p) for _, s, p in truth}
    took = wait_until_served(stack, lambda served: served == truth)
    assert took < CHANGE_DEADLINE_SECONDS


def test_json_csv_and_the_health_endpoints(stack):
    emulator(stack, "pause", {})
    truth = expected_top(emulator(stack, "state"))
    wait_until_served(stack, lambda served: served == truth)

    body = httpx.get(f"{stack.web_url}/?limit=3", timeout=10).json()
    assert [item["rank"] for item in body["data"]] == [1, 2, 3]
    assert body["meta"]["total_ranked"] == DEPTH
    assert body["meta"]["ranking_updated_at"].endswith("Z")

    csv = httpx.get(f"{stack.web_url}/", params={"limit": 3, "format": "csv"}, timeout=10)
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    lines = csv.text.split("\r\n")
    assert lines[0] == "Rank,Symbol,Price USD"
    assert lines[1].startswith(f"1,{truth[0][1]},")

    assert httpx.get(f"{stack.web_url}/?limit=0", timeout=10).status_code == 400
    assert httpx.get(f"{stack.web_url}/?limit={DEPTH + 1}", timeout=10).status_code == 400
    for path in ("/healthz", "/readyz", "/version", "/metrics", "/diagnostics"):
        assert httpx.get(f"{stack.web_url}{path}", timeout=10).status_code == 200, path
    settings = stack.settings
    for port in (settings.pricing_ops_port, settings.ranking_ops_port, settings.worker_ops_port):
        for path in ("/healthz", "/readyz", "/metrics"):
            response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
            assert response.status_code == 200, (port, path)
    metrics = httpx.get(f"http://127.0.0.1:{settings.pricing_ops_port}/metrics", timeout=10).text
    assert "topcoins_producer_publish_total" in metrics


def test_diagnostics_explain_every_match_on_the_emulator_data(stack):
    """Issue 3: aliased, shared and starred symbols are priced from the right asset."""
    emulator(stack, "pause", {})
    state = emulator(stack, "state")
    top_volume = state["ranking"][0]["volume_24h_usd"]
    # Make sure the interesting cases are ranked (high volume puts them in the top list).
    for offset, symbol in enumerate(("TONCOIN", "HOT", "HOT*")):
        emulator(
            stack,
            "assets/volume",
            {"symbol": symbol, "volume_24h_usd": top_volume * (2 + offset)},
        )
    state = emulator(stack, "state")
    truth = expected_top(state)
    wait_until_served(stack, lambda served: served == truth)

    diagnostics = httpx.get(f"{stack.web_url}/diagnostics", timeout=10).json()
    rows = {row["symbol"]: row for row in diagnostics["data"]}
    true_ids = {item["symbol"]: item["cmc_id"] for item in state["ranking"][:DEPTH]}
    assert {symbol: row["cmc_id"] for symbol, row in rows.items()} == true_ids
    assert rows["TONCOIN"]["match_rule"] == "alias"
    assert rows["HOT"]["cmc_id"] != rows["HOT*"]["cmc_id"]
    assert rows["HOT*"]["match_rule"].startswith("star")
    unmatched = [row for row in diagnostics["data"] if row["cmc_id"] is None]
    assert all(row["match_rule"] == "unmatched" and row["price_usd"] is None for row in unmatched)
    listings = {item["cmc_id"]: item for item in state["listings"]}
    served = httpx.get(f"{stack.web_url}/?limit={DEPTH}", timeout=10).json()["data"]
    for item in served:
        if item["symbol"] in ("TONCOIN", "HOT", "HOT*"):
            assert item["price_usd"] == listings[item["cmc_id"]]["price_usd"]


def test_the_example_consumer_prints_the_served_top_10(stack):
    emulator(stack, "pause", {})
    truth = expected_top(emulator(stack, "state"))
    wait_until_served(stack, lambda served: served == truth)
    script = Path(__file__).resolve().parents[2] / "scripts" / "example_consumer.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--bootstrap",
            stack.settings.kafka_bootstrap_servers,
            "--prefix",
            stack.settings.topic_prefix,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 11
    printed = [(int(line.split()[0]), line.split()[1]) for line in lines[1:]]
    assert printed == [(rank, symbol) for rank, symbol, _ in truth[:10]]


def test_topcoins_dev_starts_everything_and_stops_cleanly_on_ctrl_c(broker, tmp_path):
    """The README's one command: broker, emulator, producers, worker, web; Ctrl-C stops all."""
    web_port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("KAFKA_BOOTSTRAP_SERVERS", "CMC_BASE_URL", "CRYPTOCOMPARE_BASE_URL")
    }
    env |= {"WEB_PORT": str(web_port), "PYTHONUNBUFFERED": "1"}
    kind = broker.kind if broker.kind != "external" else "tansu"
    with (
        (tmp_path / "dev.log").open("wb") as log,
        subprocess.Popen(
            [sys.executable, "-m", "topcoins", "dev", "--broker", kind],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        ) as process,
    ):
        _check_dev(process, web_port)


def _check_dev(process: subprocess.Popen, web_port: int) -> None:
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the URL line (or exit)
        assert line.strip() == f"topcoins is serving at http://localhost:{web_port}/?limit=200"
        body = httpx.get(f"http://localhost:{web_port}/?limit=200", timeout=10).json()
        assert len(body["data"]) == DEPTH
        children = _children(process.pid)
        assert len(children) >= 6  # broker, emulator, pricing, ranking, worker, web
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(60) == 0
        time.sleep(0.5)
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


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
