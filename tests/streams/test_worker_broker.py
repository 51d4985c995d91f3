"""The worker process against real brokers (the ``bootstrap_servers`` fixture).

Each test starts ``run_worker`` in child processes on fresh topics, publishes snapshots,
reads the top topic back, then stops the worker with SIGTERM: a smoke test, the backlog
collapse, and recovery with an empty data directory.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.streams.raw import publish
from tests.streams.snapshots import prices_from_fixture, ranking_from_fixture
from topcoins.kafka_admin import ensure_topics
from topcoins.schemas import codec
from topcoins.schemas.records import TopCoin, TopListMeta, utc_millis
from topcoins.schemas.topics import META_KEY, Topics

WORKER = (
    "import os, sys\n"
    "from topcoins.settings import Settings\n"
    "from topcoins.streams.main import run_worker\n"
    "sys.exit(run_worker(Settings.from_env(os.environ)))\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkerProcesses:
    """Starts ``run_worker`` child processes on one broker; kills leftovers at the end."""

    def __init__(self, tmp_path, bootstrap_servers: str) -> None:
        self.tmp_path = tmp_path
        self.bootstrap_servers = bootstrap_servers
        self.started: list[tuple[subprocess.Popen, object]] = []

    def start(self, prefix: str, data_dir: str, **extra_env: str) -> tuple[int, subprocess.Popen]:
        port = free_port()
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "TOPIC_PREFIX": prefix,
            "WORKER_OPS_PORT": str(port),
            "WORKER_DATA_DIR": str(self.tmp_path / data_dir),
            "CONSUMER_FETCH_WAIT_MS": "10",
            "WORKER_SESSION_TIMEOUT_SECONDS": "6",
            "WORKER_HEARTBEAT_SECONDS": "1",
            **extra_env,
        }
        log = (self.tmp_path / f"worker-{len(self.started)}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-c", WORKER], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        self.started.append((process, log))
        return port, process

    def logs(self) -> list[Path]:
        """The log file of every worker started, in start order."""
        return [Path(log.name) for _, log in self.started]  # type: ignore[attr-defined]

    def close(self) -> None:
        for process, log in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
            log.close()


@pytest.fixture
def workers(tmp_path, bootstrap_servers):
    processes = WorkerProcesses(tmp_path, bootstrap_servers)
    try:
        yield processes
    finally:
        processes.close()


@pytest.fixture
def worker_process(workers):
    prefix = f"smoke-{uuid.uuid4().hex[:8]}"
    port, process = workers.start(prefix, "data")
    return prefix, port, process


async def wait_ready(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, "worker exited during start-up"
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("worker not ready within 60 s")


async def read_until_meta(consumer: AIOKafkaConsumer, pricing_snapshot_id: str) -> list:
    messages = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for batch in (await consumer.getmany(timeout_ms=1000)).values():
            for message in batch:
                messages.append(message)
                if message.key == META_KEY.encode():
                    meta = codec.decode_as(TopListMeta, message.value)
                    if meta.pricing_snapshot_id == pricing_snapshot_id:
                        return messages
    raise TimeoutError("no meta for the price snapshot within 30 s")


async def test_worker_joins_snapshots_from_a_real_broker(worker_process, bootstrap_servers):
    prefix, port, process = worker_process
    topics = Topics.for_prefix(prefix)
    await wait_ready(port, process)
    now = utc_millis(datetime.now(UTC))
    ranking = ranking_from_fixture("cc_totalvolfull_2020-05-04_page0_limit10.json", fetched_at=now)
    prices = prices_from_fixture("cmc_listings_2020-10-24.json", fetched_at=now)

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
    consumer = AIOKafkaConsumer(
        topics.top.name, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest"
    )
    await producer.start()
    await consumer.start()
    try:
        await producer.send_and_wait(topics.ranks.name, codec.encode(ranking), key=b"cryptocompare")
        await producer.send_and_wait(topics.prices.name, codec.encode(prices), key=b"coinmarketcap")
        messages = await read_until_meta(consumer, prices.snapshot_id)
    finally:
        await consumer.stop()
        await producer.stop()

    last_generation = messages[-11:]
    symbols = [a.symbol for a in ranking.assets]
    assert [m.key.decode() for m in last_generation] == [*symbols, META_KEY]
    btc = codec.decode_as(TopCoin, last_generation[0].value)
    assert (btc.rank, btc.cmc_id, btc.price_usd) == (1, 1, 12957.520086190707)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


async def read_generations(
    consumer: AIOKafkaConsumer, until: tuple[str, str | None], settle_s: float = 1.0
) -> list:
    """Every top-topic message up to the meta closing ``until`` (ranking id, pricing id),
    plus any that follow within ``settle_s``."""
    messages = []
    deadline = time.monotonic() + 45
    done_at = None
    while time.monotonic() < (done_at or deadline):
        for batch in (await consumer.getmany(timeout_ms=200)).values():
            for message in batch:
                messages.append(message)
                if message.key != META_KEY.encode():
                    continue
                meta = codec.decode_as(TopListMeta, message.value)
                if (meta.ranking_snapshot_id, meta.pricing_snapshot_id) == until:
                    done_at = time.monotonic() + settle_s
    if done_at is None:
        raise TimeoutError(f"no generation {until} within 45 s")
    return messages


def metas_of(messages: list) -> list:
    return [m for m in messages if m.key == META_KEY.encode()]


def backlog(count: int, start: datetime) -> list:
    """``count`` rankings then ``count`` price snapshots, a second apart."""
    moments = [(n, start + timedelta(seconds=n)) for n in range(count)]
    ranking = "cc_totalvolfull_2020-05-04_page0_limit10.json"
    prices = "cmc_listings_2020-10-24.json"
    return [
        ranking_from_fixture(ranking, snapshot_id=f"ranking-{n}", fetched_at=at)
        for n, at in moments
    ] + [prices_from_fixture(prices, snapshot_id=f"prices-{n}", fetched_at=at) for n, at in moments]


async def test_a_worker_on_a_backlog_publishes_only_the_latest_generations(
    workers, bootstrap_servers
):
    prefix = f"backlog-{uuid.uuid4().hex[:8]}"
    topics = Topics.for_prefix(prefix)
    await ensure_topics(bootstrap_servers, topics.all())
    start = utc_millis(datetime.now(UTC) - timedelta(minutes=10))
    # One record batch per topic: Tansu then under-reports the partitions' end offsets.
    await publish(bootstrap_servers, topics, backlog(6, start), batch=True)

    port, process = workers.start(prefix, "data")
    consumer = AIOKafkaConsumer(
        topics.top.name, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        await wait_ready(port, process)
        metas = metas_of(await read_generations(consumer, until=("ranking-5", "prices-5")))
    finally:
        await consumer.stop()

    # One generation per input topic at most (each joins its last snapshot with whatever
    # the other topic has in force then), instead of one per snapshot (12).
    assert 1 <= len(metas) <= 2
    assert dict((k, v.decode()) for k, v in metas[-1].headers) == {
        "producer": "stream-worker",
        "ranking_snapshot_id": "ranking-5",
        "pricing_snapshot_id": "prices-5",
    }
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


async def test_a_worker_with_an_empty_data_dir_recovers_its_tables_from_kafka(
    workers, bootstrap_servers
):
    prefix = f"recover-{uuid.uuid4().hex[:8]}"
    topics = Topics.for_prefix(prefix)
    start = utc_millis(datetime.now(UTC) - timedelta(minutes=10))
    by_volume, prices = backlog(1, start)
    by_market_cap = ranking_from_fixture(
        "cc_mktcapfull_2020-05-04_page0_limit10.json",
        snapshot_id="by-market-cap",
        fetched_at=start + timedelta(seconds=30),
    )
    consumer = AIOKafkaConsumer(
        topics.top.name, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest"
    )

    port, first = workers.start(prefix, "first-data-dir")
    await wait_ready(port, first)
    await publish(bootstrap_servers, topics, [by_volume, prices])
    await consumer.start()
    try:
        await read_generations(consumer, until=("ranking-0", "prices-0"), settle_s=0)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0

        port, second = workers.start(prefix, "empty-data-dir")
        await wait_ready(port, second)
        await publish(bootstrap_servers, topics, [by_market_cap])  # a ranking only
        messages = await read_generations(consumer, until=("by-market-cap", "prices-0"))
    finally:
        await consumer.stop()

    # Priced with the snapshot the first worker stored (the ``latest`` table), and the
    # symbols that left the list get tombstones (the ``top-coins`` table).
    tombstones = sorted(m.key.decode() for m in messages if m.value is None)
    assert tombstones == ["BSV", "EOS", "ETC", "LTC", "TUSD", "XLM"]
    btc = next(codec.decode_as(TopCoin, m.value) for m in messages if m.key == b"BTC")
    assert (btc.pricing_snapshot_id, btc.price_usd) == ("prices-0", 12957.520086190707)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0
