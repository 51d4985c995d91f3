"""RankedIds and its reader: the CoinMarketCap ids of the latest top list generation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from tests import generations, wire
from topcoins.kafka_admin import ensure_topics
from topcoins.producers.metrics import ProducerMetrics
from topcoins.producers.ranked_ids import RankedIds, RankedIdsReader
from topcoins.schemas.codec import encode
from topcoins.schemas.records import TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY, Topics
from topcoins.top_list import MixedGeneration
from topcoins.topic_reader import UnusableMessage

AT = datetime(2024, 9, 17, 16, 0, tzinfo=UTC)


def row(rank: int, symbol: str, cmc_id: int | None, ranking: str = "rank-1") -> tuple[bytes, bytes]:
    coin = TopCoin(
        rank, symbol, symbol.title(), cmc_id, 1.0 if cmc_id else None,
        "exact" if cmc_id else "unmatched", 1e9, AT, AT, ranking, "price-1",
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
    ids.apply(*row(1, "BTC", 1, ranking="rank-2"))
    ids.apply(*row(2, "SOL", 5426, ranking="rank-2"))
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
def test_messages_that_cannot_be_used_raise(key, value):
    with pytest.raises(UnusableMessage):
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
    raw = [
        row(1, "ETH", 1027),
        (b"BTC", b"garbage"),
        (b"BTC", wire.out_of_range("top_coin", "BTC")),  # valid Avro, timestamp out of range
        (META_KEY.encode(), wire.out_of_range("top_list_meta")),
        meta("ETH"),
    ]
    messages = [Message(topic.name, 0, offset, k, v) for offset, (k, v) in enumerate(raw)]

    reader.apply_batches({TopicPartition(topic.name, 0): messages})

    assert reader.ids() == (1027,)
    skipped = registry.get_sample_value(
        "topcoins_producer_skipped_messages_total", {"provider": "coinmarketcap"}
    )
    assert skipped == 3
    records = [r for r in caplog.records if r.getMessage() == "skipped a top-topic message"]
    assert [(r.topic, r.partition, r.offset) for r in records] == [
        (topic.name, 0, n) for n in (1, 2, 3)
    ]


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
            for key, value in [
                row(1, "SOL", 5426, ranking="rank-2"),
                meta("SOL", ranking="rank-2"),
            ]:
                await producer.send_and_wait(topic.name, key=key, value=value)
            for _ in range(300):
                if reader.ids() == (5426,):
                    break
                await asyncio.sleep(0.05)
            assert reader.ids() == (5426,)
        await reader.stop()  # safe twice
    finally:
        await producer.stop()


@pytest.mark.parametrize("case", generations.CASES, ids=lambda case: case.name)
def test_a_meta_whose_rows_mix_generations_leaves_the_ids_alone(case):
    ids = RankedIds()
    seen = []
    for key, value in case.messages:
        try:
            closed = ids.apply(key, value)
        except MixedGeneration:
            seen.append(generations.REFUSED)
            continue
        if closed:
            assert ids.ids == tuple(
                generations.cmc_id(symbol, ids.generation) for symbol in generations.SYMBOLS
            )
            seen.append(ids.generation)
    assert seen == case.at_metas


class ScriptedConsumer:
    """Stands in for the reader's consumer: ``start`` raises ``fail``, else the topic is
    there, every fetch is empty, the position stays 0 and the high watermark is
    ``highwater``."""

    def __init__(self, topic: str, fail: Exception | None = None, highwater: int = 0) -> None:
        self.topic, self.fail, self.hw = topic, fail, highwater

    async def start(self) -> None:
        if self.fail is not None:
            raise self.fail

    async def topics(self) -> set[str]:
        return {self.topic}

    def assign(self, partitions: list[TopicPartition]) -> None:
        pass

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        pass

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict:
        return dict.fromkeys(partitions, self.hw)

    async def position(self, tp: TopicPartition) -> int:
        return 0

    async def getmany(self, timeout_ms: int = 0) -> dict:
        await asyncio.sleep(0.001)
        return {}

    def highwater(self, tp: TopicPartition) -> int:
        return self.hw

    async def stop(self) -> None:
        pass


async def wait_for(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def scripted_reader(
    registry: CollectorRegistry, consumers: Callable[[], ScriptedConsumer], **options: Any
) -> RankedIdsReader:
    """A reader of the ``t`` top topic whose consumers come from ``consumers``."""
    metrics = ProducerMetrics("coinmarketcap", registry)
    top = Topics.for_prefix("t").top
    return RankedIdsReader("unused:9092", top, metrics, consumer_factory=consumers, **options)


def stuck_gauge(registry: CollectorRegistry, topic: str) -> float | None:
    labels = {"provider": "coinmarketcap", "topic": topic}
    return registry.get_sample_value("topcoins_producer_consumer_stuck", labels)


async def test_a_reader_that_keeps_failing_is_stuck_until_it_reads_again():
    topic = Topics.for_prefix("t").top
    registry = CollectorRegistry()
    consumers = iter(
        [ScriptedConsumer(topic.name, OSError("broker unreachable"))] * 3
        + [ScriptedConsumer(topic.name)] * 100
    )
    reader = scripted_reader(
        registry, lambda: next(consumers), retry_first_s=0.05, retry_max_s=0.05
    )
    async with reader:
        await wait_for(lambda: reader.stuck_reason is not None)
        assert "3 failed attempts in a row" in (reader.stuck_reason or "")
        assert "broker unreachable" in (reader.stuck_reason or "")
        assert stuck_gauge(registry, topic.name) == 1
        await wait_for(lambda: reader.stuck_reason is None)  # the fourth consumer reads
        assert stuck_gauge(registry, topic.name) == 0


async def test_a_reader_that_does_not_advance_while_messages_wait_is_stuck():
    topic = Topics.for_prefix("t").top
    registry = CollectorRegistry()
    # 5 never come
    reader = scripted_reader(registry, lambda: ScriptedConsumer(topic.name, highwater=5))
    reader.reader.progress.stuck_after_s = 0.05
    async with reader:
        await wait_for(lambda: reader.stuck_reason is not None)
    assert "although messages wait after positions {0: 0}" in (reader.stuck_reason or "")
    assert stuck_gauge(registry, topic.name) == 1


async def test_the_reader_reports_its_consumer_lag():
    topic = Topics.for_prefix("t").top
    registry = CollectorRegistry()
    reader = scripted_reader(registry, lambda: ScriptedConsumer(topic.name, highwater=7))
    labels = {"provider": "coinmarketcap", "reader": "ranked_ids"}

    def lag() -> float | None:
        return registry.get_sample_value("topcoins_producer_consumer_lag_messages", labels)

    assert lag() is None  # no fetch answer yet: nothing to report
    async with reader:
        await wait_for(lambda: lag() is not None)
    assert lag() == 7  # next offset 0, end 7
