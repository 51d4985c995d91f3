"""RankedIds and its reader: the CoinMarketCap ids of the latest top list generation."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from topcoins.kafka_admin import ensure_topics
from topcoins.producers.metrics import ProducerMetrics
from topcoins.producers.ranked_ids import RankedIds, RankedIdsReader
from topcoins.schemas.codec import DecodeError, encode
from topcoins.schemas.records import TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY, Topics

AT = datetime(2024, 9, 17, 16, 0, tzinfo=UTC)


def row(rank: int, symbol: str, cmc_id: int | None) -> tuple[bytes, bytes]:
    coin = TopCoin(
        rank, symbol, symbol.title(), cmc_id, 1.0 if cmc_id else None,
        "exact" if cmc_id else "unmatched", 1e9, AT, AT, "rank-1", "price-1",
    )  # fmt: skip
    return symbol.encode(), encode(coin)


def meta(*symbols: str, ranking: str = "rank-1") -> tuple[bytes, bytes]:
    record = TopListMeta(symbols, ranking, AT, "price-1", AT, 2426, len(symbols), 0)
    return META_KEY.encode(), encode(record)


def test_ids_of_the_closed_generation_in_rank_order():
    ids = RankedIds()
    messages = [row(1, "ETH", 1027), row(2, "GAPS", None), row(3, "BTC", 1), row(9, "OLD", 77)]

    assert not any(ids.apply(key, value) for key, value in messages)
    assert ids.ids is None  # no generation closed yet
    assert ids.apply(*meta("ETH", "GAPS", "BTC", "MISSING"))

    assert ids.ids == (1027, 1)  # unmatched, missing and older rows left out
    assert ids.generation == "rank-1"


def test_tombstones_and_newer_rows_change_the_next_generation():
    ids = RankedIds()
    for key, value in [row(1, "ETH", 1027), row(2, "BTC", 1), meta("ETH", "BTC")]:
        ids.apply(key, value)

    ids.apply(b"ETH", None)
    ids.apply(*row(1, "BTC", 1))
    ids.apply(*row(2, "SOL", 5426))
    assert ids.ids == (1027, 1)  # unchanged until the generation closes
    ids.apply(*meta("BTC", "SOL", ranking="rank-2"))

    assert ids.ids == (1, 5426)
    assert ids.generation == "rank-2"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (None, b"x"),
        (b"\xff", b"x"),
        (b"ETH", b"not avro"),
        (META_KEY.encode(), None),
        (META_KEY.encode(), row(1, "ETH", 1)[1]),  # a TopCoin where the meta belongs
    ],
)
def test_messages_that_cannot_be_used_raise_decode_error(key, value):
    with pytest.raises(DecodeError):
        RankedIds().apply(key, value)


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def test_the_reader_skips_and_counts_what_it_cannot_use(caplog):
    registry = CollectorRegistry()
    topic = Topics.for_prefix("t").top
    reader = RankedIdsReader("unused:9092", topic, ProducerMetrics("coinmarketcap", registry))
    raw = [row(1, "ETH", 1027), (b"BTC", b"garbage"), meta("ETH")]
    messages = [Message(topic.name, 0, offset, k, v) for offset, (k, v) in enumerate(raw)]

    reader.apply_batches({TopicPartition(topic.name, 0): messages})

    assert reader.ids() == (1027,)
    skipped = registry.get_sample_value(
        "topcoins_producer_skipped_messages_total", {"provider": "coinmarketcap"}
    )
    assert skipped == 1
    record = next(r for r in caplog.records if r.getMessage() == "skipped a top-topic message")
    assert (record.topic, record.partition, record.offset) == (topic.name, 0, 1)


async def test_the_reader_follows_the_top_topic_on_a_real_broker(bootstrap_servers):
    topic = Topics.for_prefix(f"test-{uuid.uuid4().hex[:12]}").top
    await ensure_topics(bootstrap_servers, (topic,))
    metrics = ProducerMetrics("coinmarketcap", CollectorRegistry())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
    await producer.start()
    try:
        for key, value in [row(1, "ETH", 1027), row(2, "BTC", 1), meta("ETH", "BTC")]:
            await producer.send_and_wait(topic.name, key=key, value=value)
        async with RankedIdsReader(bootstrap_servers, topic, metrics) as reader:
            for _ in range(300):
                if reader.ids() is not None:
                    break
                await asyncio.sleep(0.05)
            assert reader.ids() == (1027, 1)
            for key, value in [row(1, "SOL", 5426), meta("SOL", ranking="rank-2")]:
                await producer.send_and_wait(topic.name, key=key, value=value)
            for _ in range(300):
                if reader.ids() == (5426,):
                    break
                await asyncio.sleep(0.05)
            assert reader.ids() == (5426,)
        await reader.stop()  # safe twice
    finally:
        await producer.stop()
