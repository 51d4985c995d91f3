"""Writes raw snapshot messages to a real broker the way the producers do, for the tests.

Each message: the Avro single-object value, the provider key, the Kafka timestamp set to
the snapshot's ``fetched_at`` and the headers ``producer``, ``fetched_at``,
``snapshot_id``, ``schema`` (kept here, not imported from the producers, so these tests
pin the contract rather than follow the producers' code).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import datetime

from aiokafka import AIOKafkaProducer

from topcoins.kafka_admin import ensure_topics
from topcoins.schemas import codec
from topcoins.schemas.records import RankingSnapshot, Snapshot
from topcoins.schemas.topics import Topics


async def fresh_topics(bootstrap_servers: str, name: str = "hist") -> Topics:
    """A new topic set (unique prefix), created with its contract."""
    topics = Topics.for_prefix(f"{name}-{uuid.uuid4().hex[:8]}")
    await ensure_topics(bootstrap_servers, topics.all())
    return topics


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def headers_of(snapshot: Snapshot) -> list[tuple[str, bytes]]:
    producer = "ranking-producer" if isinstance(snapshot, RankingSnapshot) else "pricing-producer"
    return [
        ("producer", producer.encode()),
        ("fetched_at", snapshot.fetched_at.isoformat(timespec="milliseconds").encode()),
        ("snapshot_id", snapshot.snapshot_id.encode()),
        ("schema", type(snapshot).__name__.encode()),
    ]


def topic_of(topics: Topics, snapshot: Snapshot) -> str:
    return topics.ranks.name if isinstance(snapshot, RankingSnapshot) else topics.prices.name


async def publish(
    bootstrap_servers: str, topics: Topics, snapshots: Iterable[Snapshot], *, batch: bool = False
) -> None:
    """Publish each snapshot to its raw topic, in order.

    ``batch=True`` queues them all before waiting, so that consecutive messages of a topic
    share one record batch (Tansu then under-reports the partition's end offset).
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        max_request_size=4 * 1024 * 1024,
        linger_ms=50 if batch else 0,
    )
    await producer.start()
    try:
        pending = []
        for snapshot in snapshots:
            delivery = await producer.send(
                topic_of(topics, snapshot),
                codec.encode(snapshot),
                key=b"cryptocompare" if isinstance(snapshot, RankingSnapshot) else b"coinmarketcap",
                timestamp_ms=millis(snapshot.fetched_at),
                headers=headers_of(snapshot),
            )
            if batch:
                pending.append(delivery)
            else:
                await delivery
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def publish_bytes(
    bootstrap_servers: str, topic: str, value: bytes, at: datetime, headers: list | None = None
) -> None:
    """Publish one arbitrary value (junk, a wrong record type) with timestamp ``at``."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, timestamp_ms=millis(at), headers=headers)
    finally:
        await producer.stop()
