"""Components and the broker go away and come back: the served list stays whole and right."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.e2e.helpers import (
    DEPTH,
    assert_complete,
    change_a_price,
    emulator,
    expected_top,
    metric_value,
    pause_and_settle,
    read_top_topic,
    read_topic,
    rows_of,
    served_body,
    served_top,
    topics,
    utc,
    wait_until,
    wait_until_served,
)
from topcoins.brokers import free_port
from topcoins.dev import DevStack
from topcoins.schemas import codec
from topcoins.schemas.records import PriceSnapshot, RankingSnapshot
from topcoins.schemas.topics import META_KEY
from topcoins.streams.faults import KILLED_STATUS
from topcoins.supervisor import Component

pytestmark = pytest.mark.e2e

RESTART_DEADLINE_SECONDS = 60.0
SERVICE_NAMES = ("emulator", "pricing", "ranking", "worker", "web")


def assert_top_topic_holds_one_generation(stack: DevStack) -> None:
    """The compacted top topic holds one row per symbol of its last generation, ranked
    1..200 in that generation's order, and no other row (the contract: a tombstone when a
    symbol leaves). Call it while the drift is paused: no generation is half written."""
    state = read_top_topic(stack)
    assert state.meta is not None, "no generation on the top topic"
    symbols = list(state.meta.symbols)
    assert len(symbols) == len(set(symbols)) == DEPTH
    missing = [symbol for symbol in symbols if symbol not in state.rows]
    assert not missing, f"symbols of the last generation without a row: {missing}"
    assert [state.rows[symbol].rank for symbol in symbols] == list(range(1, DEPTH + 1))
    orphans = sorted(set(state.rows) - set(symbols))
    assert not orphans, f"rows no generation lists (never tombstoned): {orphans}"


def wait_for_joins(stack: DevStack, joins: int, what: str) -> None:
    """Wait until the (restarted) worker has published ``joins`` generations; meanwhile the
    web service serves a whole list at every look."""

    def joins_so_far() -> float:
        assert_complete(served_top(stack))
        return metric_value(stack.settings.worker_ops_port, "topcoins_worker_joins_total")

    wait_until(joins_so_far, lambda seen: seen >= joins, RESTART_DEADLINE_SECONDS, what)


# --- worker SIGKILL ----------------------------------------------------------------------

KILL_ATTEMPTS = 3


async def _kill_on_next_write(
    bootstrap_servers: str, topic: str, kill: Callable[[], None], timeout: float
) -> None:
    """Call ``kill`` as soon as the end offset of ``topic`` moves (a generation is being
    written), so that the worker dies in the middle of writing it, or just after."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        start = (await consumer.end_offsets([tp]))[tp]
        deadline = time.monotonic() + timeout
        while (await consumer.end_offsets([tp]))[tp] == start:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing was written to {topic} within {timeout:.0f} s")
        kill()
    finally:
        await consumer.stop()


def test_a_worker_killed_mid_processing_loses_and_doubles_nothing(stack):
    # The emulator drifts, so every snapshot changes prices and each join rewrites the rows.
    supervisor = stack.supervisor
    top = topics(stack).top.name
    partial = 0
    for attempt in range(1, KILL_ATTEMPTS + 1):
        asyncio.run(
            _kill_on_next_write(
                stack.settings.kafka_bootstrap_servers,
                top,
                lambda: supervisor.kill("worker", signal.SIGKILL),
                timeout=30,
            )
        )
        if read_top_topic(stack).last_key != META_KEY.encode():
            partial += 1  # it died with a generation half written
        supervisor.restart("worker")
        wait_for_joins(stack, 2, f"joins of the restarted worker (kill {attempt})")
        if partial:
            break
    truth = pause_and_settle(stack)
    assert_complete(truth)
    assert_top_topic_holds_one_generation(stack)
    print(f"{attempt} kill(s), {partial} with a generation half written")


def test_a_row_written_just_before_a_crash_is_tombstoned_when_its_symbol_leaves(stack):
    """The top topic's contract: one row per ranked asset, a tombstone when it leaves."""
    pause_and_settle(stack)
    supervisor = stack.supervisor
    bootstrap = stack.settings.kafka_bootstrap_servers
    names = topics(stack)
    ranking = emulator(stack, "state")["ranking"]
    newcomer = ranking[DEPTH + 5]["symbol"]  # just outside the list
    top_volume = ranking[0]["volume_24h_usd"]

    # The worker is restarted armed to die right after the newcomer's row is delivered
    # (``streams/faults.py``). The newcomer jumps to #1: the next generation rewrites every
    # row, the newcomer's first, and the worker dies before the others and the meta.
    worker = supervisor.components["worker"]
    supervisor.stop("worker")
    armed = {**worker.env, "TOPCOINS_TEST_KILL_AFTER_ROWS": f"row:{newcomer}"}
    dying = supervisor.start(dataclasses.replace(worker, env=armed))
    emulator(stack, "assets/volume", {"symbol": newcomer, "volume_24h_usd": top_volume * 3})
    assert dying.wait(90) == KILLED_STATUS, "the armed worker did not die after the row"
    cut_short = read_top_topic(stack)
    assert newcomer in cut_short.rows
    assert cut_short.last_key != META_KEY.encode(), "the worker finished the generation"

    # The newcomer leaves again before the worker is back.
    emulator(stack, "assets/volume", {"symbol": newcomer, "volume_24h_usd": 1.0})
    wait_until(
        lambda: codec.decode_as(RankingSnapshot, read_topic(bootstrap, names.ranks.name)[-1].value),
        lambda snapshot: newcomer not in {a.symbol for a in snapshot.assets[:DEPTH]},
        30,
        "a ranking without the newcomer",
    )
    supervisor.stop("worker")  # reaps the dead one (and closes its log)
    supervisor.start(worker)
    wait_for_joins(stack, 2, "joins of the restarted worker")
    truth = expected_top(emulator(stack, "state"))
    wait_until_served(stack, lambda served: served == truth)
    assert newcomer not in read_top_topic(stack).rows, "the newcomer's row was not tombstoned"
    assert_top_topic_holds_one_generation(stack)


# --- broker outage -----------------------------------------------------------------------

BROKER_DOWN_SECONDS = 30.0


def test_everything_reconnects_after_the_broker_was_down_for_30_seconds(broker, stack_factory):
    if broker.local is None:
        pytest.skip("an external broker cannot be stopped by the tests")
    if broker.kind == "tansu":
        pytest.skip("Tansu stores in memory here (no persistent engine): a restart loses topics")
    stack = stack_factory()
    assert stack.wait_ready(120), "the web service did not become ready within 120 s"
    good = pause_and_settle(stack)
    pids = {name: stack.supervisor.pid(name) for name in SERVICE_NAMES}

    broker.local.stop()
    try:
        down_until = time.monotonic() + BROKER_DOWN_SECONDS
        answers = 0
        while time.monotonic() < down_until:
            assert served_top(stack) == good  # HTTP 200, the last list
            assert not stack.supervisor.exited(), "a component exited while the broker was down"
            answers += 1
            time.sleep(0.5)
        assert answers > 20
    finally:
        if broker.local.process is None:
            broker.local.start()

    # Nobody was restarted: the same processes pick up again by themselves.
    assert {name: stack.supervisor.pid(name) for name in SERVICE_NAMES} == pids
    assert served_top(stack) == good
    # Both producers, the worker and the web service carry changes again: a price change
    # and a rank change (the asset at #150 gets the largest volume).
    ranking = emulator(stack, "state")["ranking"]
    mover = ranking[149]["symbol"]
    volume = ranking[0]["volume_24h_usd"] * 3
    emulator(stack, "assets/volume", {"symbol": mover, "volume_24h_usd": volume})
    _, truth = change_a_price(stack, 2468.5)
    assert truth[0][1] == mover
    took = wait_until_served(stack, lambda served: served == truth, RESTART_DEADLINE_SECONDS)
    assert not stack.supervisor.exited()
    print(f"a price change was served {took:.1f} s after the broker came back")


# --- a web replica started late ----------------------------------------------------------

# A consumer fetches at most 1 MB from a partition at once: with 3 MB of older generations
# a replica needs several fetches to reach the current list, and one that turned ready on
# its first view would serve an older list.
BACKLOG_BYTES = 3_000_000
# Polls and drift four times a second fill the top topic quickly.
FAST = {
    "PRICING_POLL_SECONDS": "0.25",
    "RANKING_POLL_SECONDS": "0.25",
    "EMULATOR_TICK_SECONDS": "0.25",
}


def test_a_web_replica_started_late_is_ready_only_with_the_full_current_list(stack_factory):
    stack = stack_factory(**FAST)
    assert stack.wait_ready(120), "the web service did not become ready within 120 s"
    top = topics(stack).top.name
    wait_until(
        lambda: sum(
            len(m.key or b"") + len(m.value or b"")
            for m in read_topic(stack.settings.kafka_bootstrap_servers, top)
        ),
        lambda size: size >= BACKLOG_BYTES,
        60,
        "a backlog of generations on the top topic",
        interval=1.0,
    )
    truth = pause_and_settle(stack)
    settled_at = utc(served_body(stack)["meta"]["ranking_updated_at"])

    port = free_port()
    web2 = f"http://127.0.0.1:{port}"
    stack.supervisor.start(Component("web2", "web", {"WEB_PORT": str(port)}, f"{web2}/healthz"))

    # Ask as often as possible (one kept-alive connection): a replica that turns ready too
    # early serves an older generation for only tens of milliseconds.
    with httpx.Client(base_url=web2, timeout=5) as client:
        ready, took = wait_until(
            lambda: client.get("/readyz"),
            lambda response: response.status_code == 200,
            60,
            "the second web process' readiness",
            interval=0,
        )
        first = client.get(f"/?limit={DEPTH}").json()
    summary = ready.json()
    # The view it became ready with is the current generation, not an older one.
    assert summary["total_ranked"] == DEPTH
    assert utc(summary["ranking_updated_at"]) >= settled_at, (summary, settled_at)
    assert rows_of(first) == truth
    assert served_top(stack) == truth
    print(f"web2 ready {took:.2f} s after its start")


# --- worker state loss (issue 4) ---------------------------------------------------------


def test_losing_the_worker_state_is_harmless(stack):
    before = pause_and_settle(stack)
    assert any(price is not None for _, _, price in before)
    supervisor = stack.supervisor
    bootstrap = stack.settings.kafka_bootstrap_servers
    names = topics(stack)

    # No new prices from now on: after the restart, only Kafka has them.
    supervisor.stop("pricing")
    last_prices = codec.decode_as(PriceSnapshot, read_topic(bootstrap, names.prices.name)[-1].value)
    wait_until(
        lambda: read_top_topic(stack).meta,
        lambda meta: meta is not None and meta.pricing_snapshot_id == last_prices.snapshot_id,
        30,
        "a generation priced with the last price snapshot",
    )
    supervisor.stop("worker")
    shutil.rmtree(stack.settings.worker_data_dir)
    restarted_at = datetime.now(UTC)
    supervisor.start(supervisor.components["worker"])

    # The first generation joined from a ranking fetched after the restart ...
    body, _ = wait_until(
        lambda: served_body(stack),
        lambda body: utc(body["meta"]["ranking_updated_at"]) > restarted_at,
        RESTART_DEADLINE_SECONDS,
        "a generation from a ranking fetched after the worker restart",
    )
    # ... is priced with the prices the worker recovered: the same list as before.
    assert rows_of(body) == before
    meta = read_top_topic(stack).meta
    assert meta is not None and meta.pricing_snapshot_id == last_prices.snapshot_id
    assert expected_top(emulator(stack, "state")) == before
    wait_until_served(stack, lambda served: served == before)
