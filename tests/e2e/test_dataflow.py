"""The whole dataflow with every component as its own process: emulator -> Kafka -> HTTP."""

from __future__ import annotations

import subprocess
import sys
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
from tests.e2e.operator_metrics import check_operator_metrics

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
    check_operator_metrics(stack)


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
