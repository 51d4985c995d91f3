"""Smoke test of the worker process against a real broker (``KAFKA_BOOTSTRAP_SERVERS``).

Starts ``run_worker`` in a child process on fresh topics, publishes one ranking and one
price snapshot, reads the top topic back, then stops the worker with SIGTERM.
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
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.streams.snapshots import prices_from_fixture, ranking_from_fixture
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


@pytest.fixture
def worker_process(tmp_path, bootstrap_servers):
    prefix = f"smoke-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "TOPIC_PREFIX": prefix,
        "WORKER_OPS_PORT": str(port),
        "WORKER_DATA_DIR": str(tmp_path / "data"),
        "CONSUMER_FETCH_WAIT_MS": "10",
    }
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield prefix, port, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.close()


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
