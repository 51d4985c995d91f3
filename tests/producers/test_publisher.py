"""SnapshotPublisher: lifecycle, headers and sizing with a fake producer; one real-broker test."""

from __future__ import annotations

import asyncio
import gzip
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY

from topcoins.kafka_admin import ensure_topics
from topcoins.producers.errors import BadResponseError
from topcoins.producers.publisher import MAX_REQUEST_SIZE, SnapshotPublisher, headers_for
from topcoins.schemas.codec import decode, encode
from topcoins.schemas.records import (
    PriceQuote,
    PriceSnapshot,
    ProducerStatus,
    RankedAsset,
    RankingSnapshot,
)
from topcoins.schemas.topics import Topics

AT = datetime(2024, 9, 17, 16, 0, 38, 490000, tzinfo=UTC)
KEY = b"coinmarketcap"


def big_price_snapshot(count: int = 5000) -> PriceSnapshot:
    """A snapshot as large as one CoinMarketCap call can return, with realistic values."""
    quotes = tuple(
        PriceQuote(
            cmc_id=30000 + i,
            symbol=f"TKN{i}",
            name=f"Token Number {i}",
            slug=f"token-number-{i}",
            cmc_rank=i,
            price_usd=1.3485738734875127e-05 * (i + 1),
            volume_24h_usd=34883015919.87704 / (i + 1),
            last_updated=AT,
        )
        for i in range(1, count + 1)
    )
    return PriceSnapshot(uuid.uuid4().hex, AT, 9813, quotes)


class FakeProducer:
    """Stands in for AIOKafkaProducer: records its config, start/stop calls and sends."""

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.started = 0
        self.stopped = 0
        self.sent: list[dict[str, Any]] = []
        self.fail_start: Exception | None = None

    async def start(self) -> None:
        self.started += 1
        if self.fail_start is not None:
            raise self.fail_start

    async def stop(self) -> None:
        self.stopped += 1

    async def send_and_wait(self, topic: str, **kwargs: Any) -> None:
        self.sent.append({"topic": topic, **kwargs})


def fake_publisher(**kwargs: Any) -> tuple[SnapshotPublisher, list[FakeProducer]]:
    made: list[FakeProducer] = []

    def factory(**config: Any) -> FakeProducer:
        producer = FakeProducer(**config)
        made.append(producer)
        return producer

    return SnapshotPublisher(
        "broker:9092", "pricing-producer", producer_factory=factory, **kwargs
    ), made


async def test_producer_config_is_durable_compressed_and_sized():
    publisher, made = fake_publisher()

    async with publisher:
        pass

    config = made[0].config
    assert config["acks"] == "all"
    assert config["compression_type"] == "gzip"
    assert config["max_request_size"] == MAX_REQUEST_SIZE == 4 * 1024 * 1024
    assert config["bootstrap_servers"] == "broker:9092"
    assert config["client_id"] == "pricing-producer"
    assert config["enable_idempotence"] is False
    assert config["linger_ms"] == 0  # one snapshot per poll: lingering would only delay it


async def test_publish_sends_encoded_value_key_and_headers():
    publisher, made = fake_publisher()
    snapshot = big_price_snapshot(3)

    async with publisher:
        size = await publisher.publish("topcoins.prices.v1", KEY, snapshot)

    sent = made[0].sent[0]
    assert sent["topic"] == "topcoins.prices.v1"
    assert sent["key"] == KEY
    assert decode(sent["value"]) == snapshot
    assert size == len(sent["value"])
    assert dict(sent["headers"]) == {
        "producer": b"pricing-producer",
        "fetched_at": b"2024-09-17T16:00:38.490+00:00",
        "snapshot_id": snapshot.snapshot_id.encode(),
        "schema": b"PriceSnapshot",
    }


async def test_publish_times_the_encode_and_publish_stages():
    publisher, _ = fake_publisher()

    def count(stage: str) -> float:
        labels = {"provider": "coinmarketcap", "stage": stage}
        return REGISTRY.get_sample_value("topcoins_producer_stage_seconds_count", labels) or 0.0

    before = {stage: count(stage) for stage in ("encode", "publish")}
    async with publisher:
        await publisher.publish("topcoins.prices.v1", KEY, big_price_snapshot(3))

    assert {stage: count(stage) - before[stage] for stage in before} == {
        "encode": 1,
        "publish": 1,
    }


def test_headers_name_the_record_type():
    ranking = RankingSnapshot("r1", AT, 200, None, (RankedAsset(1, "BTC", "Bitcoin", "1182", 1.0),))

    headers = dict(headers_for("ranking-producer", ranking))

    assert headers["schema"] == b"RankingSnapshot"
    assert headers["producer"] == b"ranking-producer"


async def test_stop_flushes_once_and_is_safe_twice():
    publisher, made = fake_publisher()
    await publisher.start()
    assert publisher.started

    await publisher.stop()
    await publisher.stop()

    assert made[0].stopped == 1
    assert not publisher.started


async def test_a_stopped_publisher_refuses_to_restart_or_publish():
    publisher, _ = fake_publisher()
    await publisher.start()
    await publisher.stop()

    with pytest.raises(RuntimeError, match="create a new one"):
        await publisher.start()
    with pytest.raises(RuntimeError, match="was stopped"):
        await publisher.publish("t", KEY, big_price_snapshot(1))


async def test_publish_before_start_is_refused():
    publisher, _ = fake_publisher()

    with pytest.raises(RuntimeError, match="is not started"):
        await publisher.publish("t", KEY, big_price_snapshot(1))


async def test_failed_start_closes_the_producer():
    def factory(**config: Any) -> FakeProducer:
        producer = FakeProducer(**config)
        producer.fail_start = OSError("no broker")
        made.append(producer)
        return producer

    made: list[FakeProducer] = []
    publisher = SnapshotPublisher("broker:9092", "pricing-producer", producer_factory=factory)

    with pytest.raises(OSError):
        await publisher.start()

    assert made[0].stopped == 1
    assert not publisher.started


async def test_schema_invalid_record_is_rejected_and_not_sent():
    publisher, made = fake_publisher()
    bad = PriceQuote(1, None, "Bitcoin", "bitcoin", 1, 1.0, 1.0, AT)  # type: ignore[arg-type]

    async with publisher:
        with pytest.raises(BadResponseError, match="does not fit its Avro schema") as caught:
            await publisher.publish("t", KEY, PriceSnapshot("s", AT, None, (bad,)))

    assert caught.value.provider == "coinmarketcap"
    assert made[0].sent == []


def test_a_5000_quote_snapshot_fits_with_room_to_spare():
    value = encode(big_price_snapshot(5000))

    assert len(value) < MAX_REQUEST_SIZE / 4
    assert len(gzip.compress(value)) < 1_000_000 / 4  # Kafka's default max.message.bytes


async def test_status_is_sent_with_its_key_schema_header_and_attempt_time():
    publisher, made = fake_publisher()
    status = ProducerStatus(
        "coinmarketcap", "pricing-producer", 572.0, AT, None, None, "HTTP 502", "server", AT, 1
    )
    await publisher.start()

    size = await publisher.publish_status("p.status.v1", KEY, status)

    sent = made[0].sent[0]
    assert (sent["topic"], sent["key"], size) == ("p.status.v1", KEY, len(sent["value"]))
    assert decode(sent["value"]) == status
    assert dict(sent["headers"]) == {"producer": b"pricing-producer", "schema": b"ProducerStatus"}
    assert sent["timestamp_ms"] == int(AT.timestamp() * 1000)


async def test_round_trip_through_a_real_broker(bootstrap_servers):
    topics = Topics.for_prefix(f"test-{uuid.uuid4().hex[:12]}")
    await ensure_topics(bootstrap_servers, (topics.prices,))
    snapshot = big_price_snapshot(5000)

    async with SnapshotPublisher(bootstrap_servers, "pricing-producer") as publisher:
        await publisher.publish(topics.prices.name, KEY, snapshot)

    consumer = AIOKafkaConsumer(
        topics.prices.name,
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    assert message.key == KEY
    assert decode(message.value) == snapshot
    assert dict(message.headers)["schema"] == b"PriceSnapshot"
    assert dict(message.headers)["snapshot_id"] == snapshot.snapshot_id.encode()
