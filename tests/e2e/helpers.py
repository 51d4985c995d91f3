"""Helpers the end-to-end tests share: the emulator's control API, the served list, Kafka.

Every wait here polls until a condition holds (never a fixed sleep) and fails with what it
saw last, so a failure says how far the system got.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from topcoins.dev import DevStack
from topcoins.schemas import codec
from topcoins.schemas.records import TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY, Topics

CHANGE_DEADLINE_SECONDS = 30.0
DEPTH = 200

Row = tuple[int, str, float | None]
T = TypeVar("T")


def emulator(stack: DevStack, path: str, payload: dict | None = None) -> dict:
    """Call the emulator's control API (GET without a payload, POST with one)."""
    url = f"{stack.emulator_url}/_emulator/{path}"
    response = (
        httpx.post(url, json=payload, timeout=10)
        if payload is not None
        else httpx.get(url, timeout=10)
    )
    response.raise_for_status()
    return response.json()


def set_fault(stack: DevStack, provider: str, mode: str, **options: float) -> None:
    """Inject a fault (``mode="none"`` clears it) for ``coinmarketcap``, ``cryptocompare``
    or ``both``."""
    emulator(stack, "faults", {"provider": provider, "mode": mode, **options})


def expected_top(state: dict, depth: int = DEPTH) -> list[Row]:
    """(rank, symbol, price) the service must serve for the emulator's current truth."""
    prices = state["prices"]
    return [
        (
            item["position"],
            item["symbol"],
            prices.get(str(item["cmc_id"])) if item["cmc_id"] is not None else None,
        )
        for item in state["ranking"][:depth]
    ]


def served_body(stack: DevStack, limit: int = DEPTH) -> dict:
    """The parsed JSON answer of ``GET /?limit=N``; it must be a 200."""
    response = httpx.get(f"{stack.web_url}/?limit={limit}", timeout=10)
    assert response.status_code == 200, (response.status_code, response.text[:300])
    return response.json()


def rows_of(body: dict) -> list[Row]:
    """(rank, symbol, price) of every row of a served JSON answer."""
    return [(item["rank"], item["symbol"], item["price_usd"]) for item in body["data"]]


def served_top(stack: DevStack, limit: int = DEPTH) -> list[Row]:
    """(rank, symbol, price) as the web service serves them now."""
    return rows_of(served_body(stack, limit))


def wait_until(
    probe: Callable[[], T],
    want: Callable[[T], bool],
    deadline: float,
    what: str,
    interval: float = 0.2,
    unavailable: tuple[type[Exception], ...] = (httpx.TransportError,),
) -> tuple[T, float]:
    """Call ``probe`` until ``want(result)``; return the result and the seconds it took.

    A probe raising one of ``unavailable`` (by default: the server is not listening yet)
    counts as "not yet".
    """
    started = time.monotonic()
    last: Any = None
    while True:
        try:
            last = probe()
        except unavailable as exc:
            last = exc
        else:
            if want(last):
                return last, time.monotonic() - started
        if time.monotonic() - started > deadline:
            shown = repr(last)
            pytest.fail(f"{what}: not within {deadline:.0f} s; last seen {shown[:400]}")
        time.sleep(interval)


def wait_until_served(
    stack: DevStack, want: Callable[[list[Row]], bool], deadline: float = CHANGE_DEADLINE_SECONDS
) -> float:
    """Poll the web service until ``want(served)`` holds; return the seconds it took."""
    _, took = wait_until(lambda: served_top(stack), want, deadline, "the served list")
    return took


def pause_and_settle(stack: DevStack) -> list[Row]:
    """Stop the emulator's drift and wait until its truth is served; return that list."""
    emulator(stack, "pause", {})
    truth = expected_top(emulator(stack, "state"))
    wait_until_served(stack, lambda served: served == truth)
    return truth


def assert_complete(rows: list[Row], depth: int = DEPTH) -> None:
    """Ranks 1..depth in order, each symbol once: nothing lost or doubled."""
    assert [rank for rank, _, _ in rows] == list(range(1, depth + 1))
    symbols = [symbol for _, symbol, _ in rows]
    doubled = sorted({s for s in symbols if symbols.count(s) > 1})
    assert not doubled, f"symbols served twice: {doubled}"


def change_a_price(stack: DevStack, price: float) -> tuple[str, list[Row]]:
    """Set ``price`` on a ranked asset that has a CoinMarketCap price; return its symbol and
    the new truth."""
    ranking = emulator(stack, "state")["ranking"]
    asset = next(item for item in ranking[5:DEPTH] if item["cmc_id"] is not None)
    emulator(stack, "assets/price", {"cmc_id": asset["cmc_id"], "price_usd": price})
    truth = expected_top(emulator(stack, "state"))
    assert (asset["symbol"], price) in {(symbol, p) for _, symbol, p in truth}
    return asset["symbol"], truth


def utc(iso: str) -> datetime:
    """A served ``...Z`` timestamp as an aware datetime."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC)


def topics(stack: DevStack) -> Topics:
    """The stack's topics (its own ``TOPIC_PREFIX``)."""
    return stack.settings.topics


def ops_url(port: int, path: str) -> str:
    return f"http://127.0.0.1:{port}{path}"


def metric_value(port: int, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``, from ``/metrics``."""
    text = httpx.get(ops_url(port, "/metrics"), timeout=10).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def log_entries(stack: DevStack, component: str) -> list[dict]:
    """The JSON log lines a component has written so far (other lines are left out)."""
    assert stack.supervisor.log_dir is not None
    path = Path(stack.supervisor.log_dir) / f"{component}.log"
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries


@dataclass(frozen=True)
class KafkaMessage:
    """One message read back from a topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


def read_topic(bootstrap_servers: str, topic: str, timeout: float = 30.0) -> list[KafkaMessage]:
    """Every message on partition 0 of ``topic``, from the beginning to its end now."""
    return asyncio.run(_read_topic(bootstrap_servers, topic, timeout))


async def _read_topic(bootstrap_servers: str, topic: str, timeout: float) -> list[KafkaMessage]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        # The end is the larger of ListOffsets' answer and the high watermark of the first
        # fetch response: Tansu's ListOffsets can report an end short of the last message.
        listed_end = (await consumer.end_offsets([tp]))[tp]
        end: int | None = None
        messages: list[KafkaMessage] = []
        deadline = time.monotonic() + timeout
        while end is None or await consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: read {len(messages)} of {end} messages")
            batches = await consumer.getmany(tp, timeout_ms=500)
            messages += [
                KafkaMessage(m.topic, m.partition, m.offset, m.key, m.value, tuple(m.headers or ()))
                for m in batches.get(tp, [])
            ]
            highwater = consumer.highwater(tp)
            if end is None and highwater is not None:
                end = max(listed_end, highwater)
        return messages
    finally:
        await consumer.stop()


def produce(
    bootstrap_servers: str, topic: str, messages: Iterable[tuple[bytes | None, bytes | None]]
) -> list[int]:
    """Write ``(key, value)`` messages to partition 0 of ``topic`` in order; return offsets."""
    return asyncio.run(_produce(bootstrap_servers, topic, list(messages)))


async def _produce(
    bootstrap_servers: str, topic: str, messages: list[tuple[bytes | None, bytes | None]]
) -> list[int]:
    # Up to 16 MB per message: the broker, not this client, decides what is too large.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, enable_idempotence=False, max_request_size=16 << 20
    )
    await producer.start()
    try:
        offsets = []
        for key, value in messages:
            metadata = await producer.send_and_wait(topic, value, key=key, partition=0)
            offsets.append(metadata.offset)
        return offsets
    finally:
        await producer.stop()


@dataclass(frozen=True)
class TopTopicState:
    """The top topic folded by key, as a reader that applies every message in order sees it."""

    rows: dict[str, TopCoin]
    meta: TopListMeta | None
    last_key: bytes | None
    messages: int


def read_top_topic(stack: DevStack) -> TopTopicState:
    """Read the stack's whole top topic and fold it (a tombstone removes its row)."""
    messages = read_topic(stack.settings.kafka_bootstrap_servers, topics(stack).top.name)
    rows: dict[str, TopCoin] = {}
    meta: TopListMeta | None = None
    for message in messages:
        key = (message.key or b"").decode()
        if key == META_KEY:
            meta = codec.decode_as(TopListMeta, message.value)
        elif message.value is None:
            rows.pop(key, None)
        else:
            rows[key] = codec.decode_as(TopCoin, message.value)
    last_key = messages[-1].key if messages else None
    return TopTopicState(rows, meta, last_key, len(messages))
