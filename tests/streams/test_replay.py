"""``topcoins replay``: rendering, argument errors, and runs against real brokers."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests.streams.raw import fresh_topics, publish
from tests.streams.snapshots import prices_of, quote, ranked, ranking_of
from topcoins.domain import AliasTable, join_top_list
from topcoins.schemas.records import utc_millis
from topcoins.settings import Settings
from topcoins.streams.replay import OutputFormat, render, run_replay

START = utc_millis(datetime.now(UTC) - timedelta(hours=2))
RANKING = ranking_of(
    ranked(1, "BTC", "Bitcoin"),
    ranked(2, "ETH", "Ethereum"),
    ranked(3, "NOPE", "Not On CoinMarketCap"),
    snapshot_id="ranking-a",
    fetched_at=START,
)
PRICES = prices_of(
    quote(1, "BTC", "Bitcoin", rank=1, price=67000.5),
    quote(1027, "ETH", "Ethereum", rank=2, price=0.00001234),
    snapshot_id="prices-a",
    fetched_at=START + timedelta(seconds=10),
)
LATER_RANKING = ranking_of(
    ranked(1, "ETH", "Ethereum"),
    ranked(2, "BTC", "Bitcoin"),
    snapshot_id="ranking-b",
    fetched_at=START + timedelta(seconds=60),
)
RESULT = join_top_list(RANKING, PRICES, AliasTable())


@pytest.fixture
def restore_logging():
    """``run_replay`` configures process-wide logging; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("aiokafka", "httpx", "httpcore")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


@pytest.fixture
def prefix(bootstrap_servers) -> str:
    """Fresh raw topics holding RANKING, PRICES and LATER_RANKING."""

    async def setup() -> str:
        topics = await fresh_topics(bootstrap_servers, "replay")
        await publish(bootstrap_servers, topics, [RANKING, PRICES, LATER_RANKING])
        return topics.ranks.name.removesuffix(".ranks.v1")

    return asyncio.run(setup())


def run(bootstrap: str, prefix: str, **kwargs) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    settings = Settings(kafka_bootstrap_servers=bootstrap, topic_prefix=prefix)
    code = run_replay(settings, aliases=AliasTable(), out=out, err=err, **kwargs)
    return code, out.getvalue(), err.getvalue()


# --- rendering ---------------------------------------------------------------------------


def test_table_aligns_columns_and_leaves_unknowns_empty():
    lines = render(RESULT.rows, RESULT, OutputFormat.TABLE).splitlines()

    assert lines == [
        "rank  symbol  name                  cmc_id   price_usd  match_rule",
        "   1  BTC     Bitcoin                    1     67000.5  exact",
        "   2  ETH     Ethereum                1027  0.00001234  exact",
        "   3  NOPE    Not On CoinMarketCap                      unmatched",
    ]


def test_csv_has_a_header_and_one_line_per_row():
    rows = list(csv.reader(io.StringIO(render(RESULT.rows[:2], RESULT, OutputFormat.CSV))))

    assert rows == [
        ["rank", "symbol", "name", "cmc_id", "price_usd", "match_rule"],
        ["1", "BTC", "Bitcoin", "1", "67000.5", "exact"],
        ["2", "ETH", "Ethereum", "1027", "0.00001234", "exact"],
    ]


def test_json_has_the_rows_and_where_they_came_from():
    document = json.loads(render(RESULT.rows[:1], RESULT, OutputFormat.JSON))

    assert document["data"] == [
        {
            "rank": 1,
            "symbol": "BTC",
            "name": "Bitcoin",
            "cmc_id": 1,
            "price_usd": 67000.5,
            "match_rule": "exact",
        }
    ]
    assert document["meta"] == {
        "ranking_snapshot_id": "ranking-a",
        "ranking_fetched_at": START.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "pricing_snapshot_id": "prices-a",
        "prices_fetched_at": (START + timedelta(seconds=10))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "count": 1,
        "total_ranked": 3,
        "unmatched": 1,
    }


# --- arguments ---------------------------------------------------------------------------


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"at": "yesterday"}, "--at must be an ISO 8601 date and time with a UTC offset"),
        ({"at": "2026-11-27T12:00"}, "--at '2026-11-27T12:00' has no UTC offset: add Z"),
        ({"since": "2026-11-27T12:00"}, "--since '2026-11-27T12:00' has no UTC offset"),
        ({"at": "2026-01-01", "since": "2025-01-01"}, "do not combine it with --since"),
        ({"since": "2026-01-02T00:00Z", "until": "2026-01-01T00:00Z"}, "is later than --until"),
        ({"limit": 0}, "--limit must be at least 1"),
        ({"output": "xml"}, "'xml' is not a valid OutputFormat"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(kwargs, reason):
    code, out, err = run("127.0.0.1:1", "unused", **kwargs)

    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and reason in err


# --- against a broker --------------------------------------------------------------------


@pytest.mark.usefixtures("restore_logging")
def test_at_prints_the_list_of_that_moment(bootstrap_servers, prefix):
    at = (START + timedelta(seconds=30)).isoformat()
    code, out, err = run(bootstrap_servers, prefix, at=at, output="json", limit=2)

    assert code == 0
    document = json.loads(out)
    assert [row["symbol"] for row in document["data"]] == ["BTC", "ETH"]
    assert document["meta"]["ranking_snapshot_id"] == "ranking-a"
    assert err.startswith("topcoins replay: 2 rows as of ") and err.count("\n") == 1
    assert "ranking ranking-a" in err and "prices prices-a" in err


@pytest.mark.usefixtures("restore_logging")
def test_replay_prints_the_final_list_and_counts(bootstrap_servers, prefix):
    code, out, err = run(bootstrap_servers, prefix, output="csv")

    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert [row[1] for row in rows[1:]] == ["ETH", "BTC"]
    assert "3 snapshots read, 3 generations, 0 skipped" in err


@pytest.mark.usefixtures("restore_logging")
def test_replay_up_to_a_moment(bootstrap_servers, prefix):
    until = (START + timedelta(seconds=30)).isoformat()
    code, out, _ = run(bootstrap_servers, prefix, until=until, output="csv")

    assert code == 0
    assert [row[1] for row in csv.reader(io.StringIO(out))][1:] == ["BTC", "ETH", "NOPE"]


@pytest.mark.usefixtures("restore_logging")
def test_a_moment_before_the_history_exits_1_with_one_line(bootstrap_servers, prefix):
    at = (START - timedelta(minutes=1)).isoformat()
    code, out, err = run(bootstrap_servers, prefix, at=at)

    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert "oldest ranking snapshot retained" in err


def test_the_command_line(bootstrap_servers, prefix):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers, "TOPIC_PREFIX": prefix}
    at = (START + timedelta(seconds=90)).isoformat()
    done = subprocess.run(
        [sys.executable, "-m", "topcoins", "replay", "--at", at, "--format", "table"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split()[:2] == ["1", "ETH"]
    assert "ranking ranking-b" in done.stderr


def test_csv_serves_a_formula_like_symbol_or_name_as_text():
    ranking = ranking_of(ranked(1, "=1+1", "@SUM(A1)"))
    result = join_top_list(ranking, None, AliasTable())

    rows = list(csv.reader(io.StringIO(render(result.rows, result, OutputFormat.CSV))))

    assert rows[1][:3] == ["1", "'=1+1", "'@SUM(A1)"]
