"""TopListReplica: message handling, the consume loop (with a fake consumer) and a real broker."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError

from tests.web.factories import SAMPLE_ROWS, coin, meta
from topcoins.schemas.codec import encode
from topcoins.schemas.records import TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY, Topics
from topcoins.settings import Settings
from topcoins.web.replica import StaticReplica, TopListReplica
from topcoins.web.view import TopListView

TOPICS = Topics.for_prefix("test")
TP = TopicPartition(TOPICS.top.name, 0)


@dataclass
class Record:
    """What aiokafka's ConsumerRecord offers the replica."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def records(messages: Iterable[tuple[bytes | None, bytes | None]], start: int = 0) -> list[Record]:
    return [
        Record(TOPICS.top.name, 0, offset, key, value)
        for offset, (key, value) in enumerate(messages, start=start)
    ]


def row_message(row: TopCoin) -> tuple[bytes, bytes]:
    return row.symbol.encode(), encode(row)


def meta_message(closing: TopListMeta) -> tuple[bytes, bytes]:
    return META_KEY.encode(), encode(closing)


def generation(rows: list[TopCoin]) -> list[tuple[bytes | None, bytes | None]]:
    return [*map(row_message, rows), meta_message(meta([r.symbol for r in rows]))]


def new_replica(**kwargs: Any) -> TopListReplica:
    return TopListReplica(Settings(), TOPICS, retry_first_s=0.01, retry_max_s=0.02, **kwargs)


class FakeConsumer:
    """Just enough of AIOKafkaConsumer: a log of batches, failures to inject, call records."""

    def __init__(self, log: FakeLog) -> None:
        self.log = log
        self.position: dict[TopicPartition, int] = {}
        self.stopped = False

    async def start(self) -> None:
        self.log.starts += 1
        if self.log.start_failures:
            self.log.start_failures -= 1
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")

    async def topics(self) -> set[str]:
        self.log.topic_checks += 1
        return set(self.log.topics)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.log.assigned.append(list(partitions))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.log.seeks.append((tp, offset))
        self.position[tp] = offset

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.log.seeks.append((tp, "beginning"))
            self.position[tp] = 0

    async def getmany(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Record]]:
        if self.log.fetch_failures:
            self.log.fetch_failures -= 1
            raise KafkaError("broker went away")
        offset = self.position[TP]
        pending = self.log.records[offset:]
        if not pending:
            await asyncio.sleep(0.005)
            return {}
        batch = pending[: self.log.batch_size]
        self.position[TP] = offset + len(batch)
        return {TP: batch}

    def highwater(self, tp: TopicPartition) -> int:
        return len(self.log.records)

    async def stop(self) -> None:
        self.stopped = True
        self.log.stops += 1


@dataclass
class FakeLog:
    """The fake broker: its records and what the consumers did."""

    records: list[Record]
    topics: tuple[str, ...] = (TOPICS.top.name,)
    batch_size: int = 1000
    start_failures: int = 0
    fetch_failures: int = 0
    starts: int = 0
    stops: int = 0
    topic_checks: int = 0

    def __post_init__(self) -> None:
        self.assigned: list[list[TopicPartition]] = []
        self.seeks: list[tuple[TopicPartition, Any]] = []
        self.consumers: list[FakeConsumer] = []

    def factory(self) -> FakeConsumer:
        consumer = FakeConsumer(self)
        self.consumers.append(consumer)
        return consumer

    def append(self, messages: Iterable[tuple[bytes | None, bytes | None]]) -> None:
        self.records.extend(records(messages, start=len(self.records)))


async def eventually(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def symbols(view: TopListView | None) -> list[str]:
    assert view is not None
    return [entry.symbol for entry in view.entries]


# -- message handling, no consumer ------------------------------------------------------


def test_apply_batches_publishes_the_last_complete_generation() -> None:
    replica = new_replica()
    first = generation(SAMPLE_ROWS[:2])
    second = generation(SAMPLE_ROWS[:3])
    replica.apply_batches({TP: records([*first, *second])})

    assert symbols(replica.view) == ["BTC", "ETH", "USDT"]
    assert replica.view is not None and replica.view.generation == 2
    assert replica.stats.generations == 2
    assert replica.stats.messages_applied == len(first) + len(second)
    assert replica.stats.last_generation_at is not None


def test_rows_without_meta_do_not_change_the_view() -> None:
    replica = new_replica()
    replica.apply_batches({TP: records(generation(SAMPLE_ROWS[:2]))})
    before = replica.view
    replica.apply_batches({TP: records([row_message(coin("SOL", "Solana", 5426, 150.0))], 3)})
    assert replica.view is before


def test_undecodable_message_is_logged_counted_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    replica = new_replica()
    messages = [row_message(SAMPLE_ROWS[0]), (b"ETH", b"\x00garbage"), meta_message(meta(["BTC"]))]
    with caplog.at_level(logging.WARNING, logger="topcoins.web.replica"):
        replica.apply_batches({TP: records(messages, start=40)})

    assert symbols(replica.view) == ["BTC"]
    assert replica.stats.skipped_messages == 1
    (logged,) = [r for r in caplog.records if r.getMessage() == "skipped a message"]
    assert (logged.topic, logged.partition, logged.offset) == (TOPICS.top.name, 0, 41)  # type: ignore[attr-defined]
    assert "not Avro single-object encoded" in logged.reason  # type: ignore[attr-defined]


def test_incomplete_generation_is_logged_counted_and_not_published(
    caplog: pytest.LogCaptureFixture,
) -> None:
    replica = new_replica()
    replica.apply_batches({TP: records(generation(SAMPLE_ROWS[:1]))})
    served = replica.view
    with caplog.at_level(logging.WARNING, logger="topcoins.web.replica"):
        replica.apply_batches({TP: records([meta_message(meta(["BTC", "DOGE"]))], start=2)})

    assert replica.view is served
    assert replica.stats.incomplete_generations == 1
    (logged,) = [r for r in caplog.records if "incomplete generation" in r.getMessage()]
    assert logged.missing == ["DOGE"]  # type: ignore[attr-defined]
    assert logged.offset == 2  # type: ignore[attr-defined]


async def test_wait_for_view_returns_the_next_view() -> None:
    replica = new_replica()
    waiter = asyncio.create_task(replica.wait_for_view())
    await asyncio.sleep(0)
    assert not waiter.done()
    replica.apply_batches({TP: records(generation(SAMPLE_ROWS[:1]))})
    first = await asyncio.wait_for(waiter, 1)
    assert await replica.wait_for_view() is first  # no `after`: the current one at once

    follower = asyncio.create_task(replica.wait_for_view(after=first))
    await asyncio.sleep(0)
    assert not follower.done()
    replica.apply_batches({TP: records(generation(SAMPLE_ROWS[:2]), start=2)})
    assert symbols(await asyncio.wait_for(follower, 1)) == ["BTC", "ETH"]


async def test_static_replica_publishes_and_wakes_waiters(sample_view: TopListView) -> None:
    replica = StaticReplica()
    waiter = asyncio.create_task(replica.wait_for_view())
    await asyncio.sleep(0)
    replica.publish(sample_view)
    assert await asyncio.wait_for(waiter, 1) is sample_view
    async with replica as entered:
        assert entered is replica and replica.running


# -- the consume loop, with a fake consumer -------------------------------------------


async def test_consumes_from_the_beginning_without_a_group() -> None:
    log = FakeLog(records(generation(SAMPLE_ROWS)))
    replica = new_replica(consumer_factory=log.factory)
    assert not replica.running
    async with replica:
        view = await asyncio.wait_for(replica.wait_for_view(), 5)
        assert symbols(view) == [row.symbol for row in SAMPLE_ROWS]
        assert replica.running
        await eventually(lambda: replica.stats.lag == 0)
    assert not replica.running
    assert log.assigned == [[TP]]
    assert log.seeks == [(TP, "beginning")]
    assert log.stops == 1


async def test_real_consumer_settings() -> None:
    settings = Settings(kafka_bootstrap_servers="k1:9092, k2:9092", consumer_fetch_wait_ms=7)
    consumer = TopListReplica(settings, TOPICS)._new_consumer()
    try:
        assert consumer._group_id is None
        assert consumer._fetcher is None  # not started: no connection was attempted
        assert consumer._client._bootstrap_servers == ["k1:9092", "k2:9092"]
        assert consumer._fetch_max_wait_ms == 7
        assert consumer._enable_auto_commit is False
    finally:
        await consumer.stop()


async def test_new_generations_are_served_while_running() -> None:
    log = FakeLog(records(generation(SAMPLE_ROWS[:1])))
    async with new_replica(consumer_factory=log.factory) as replica:
        first = await asyncio.wait_for(replica.wait_for_view(), 5)
        log.append([(b"BTC", None), *generation(SAMPLE_ROWS[1:3])])
        second = await asyncio.wait_for(replica.wait_for_view(after=first), 5)
        assert symbols(second) == ["ETH", "USDT"]


async def test_start_failures_are_retried(caplog: pytest.LogCaptureFixture) -> None:
    log = FakeLog(records(generation(SAMPLE_ROWS[:1])), start_failures=2)
    with caplog.at_level(logging.WARNING, logger="topcoins.web.replica"):
        async with new_replica(consumer_factory=log.factory) as replica:
            await asyncio.wait_for(replica.wait_for_view(), 5)
    assert log.starts == 3
    assert log.stops == 3  # every consumer was closed, failed or not
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2 and retries[0].exc_info is not None


async def test_waits_for_the_topic_instead_of_auto_creating_it() -> None:
    log = FakeLog(records(generation(SAMPLE_ROWS[:1])), topics=())
    async with new_replica(consumer_factory=log.factory) as replica:
        await eventually(lambda: log.topic_checks >= 3)
        assert log.assigned == [] and not replica.running
        log.topics = (TOPICS.top.name,)
        await asyncio.wait_for(replica.wait_for_view(), 5)
        assert log.assigned == [[TP]]


async def test_keeps_serving_and_resumes_after_a_consumer_failure() -> None:
    log = FakeLog(records(generation(SAMPLE_ROWS[:2])), batch_size=2)
    async with new_replica(consumer_factory=log.factory) as replica:
        first = await asyncio.wait_for(replica.wait_for_view(), 5)
        log.fetch_failures = 1
        await eventually(lambda: log.starts == 2 and replica.running)
        assert replica.view is first  # the last view is still served
        log.append(generation(SAMPLE_ROWS[2:4]))
        second = await asyncio.wait_for(replica.wait_for_view(after=first), 5)
    assert symbols(second) == ["USDT", "WIF"]
    # the second consumer resumed after the last applied message, not from the beginning
    assert log.seeks == [(TP, "beginning"), (TP, 3)]
    assert replica.stats.generations == 2


async def test_stop_is_idempotent_and_a_stopped_replica_cannot_restart() -> None:
    log = FakeLog([])
    replica = new_replica(consumer_factory=log.factory)
    await replica.start()
    await replica.start()  # already started: no second task
    await eventually(lambda: replica.running)
    await replica.stop()
    await replica.stop()
    assert log.starts == 1 and log.stops == 1
    with pytest.raises(RuntimeError, match="create a new one"):
        await replica.start()


async def test_stopping_before_starting_is_harmless() -> None:
    replica = new_replica(consumer_factory=FakeLog([]).factory)
    await replica.stop()
    assert not replica.running


# -- a real broker ----------------------------------------------------------------------


async def test_real_broker_rows_then_meta_become_a_view(bootstrap_servers: str) -> None:
    from aiokafka import AIOKafkaProducer

    from topcoins.kafka_admin import ensure_topics

    prefix = f"webtest-{uuid.uuid4().hex[:10]}"
    topics = Topics.for_prefix(prefix)
    settings = Settings(kafka_bootstrap_servers=bootstrap_servers, topic_prefix=prefix)
    await ensure_topics(bootstrap_servers, (topics.top,))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_servers)
    await producer.start()
    try:
        async with TopListReplica(settings, topics) as replica:
            for key, value in [*generation(SAMPLE_ROWS), (b"BTC", b"junk")]:
                await producer.send_and_wait(topics.top.name, value, key=key)
            first = await asyncio.wait_for(replica.wait_for_view(), 30)
            assert symbols(first) == [row.symbol for row in SAMPLE_ROWS]

            for key, value in [(b"WIF", None), meta_message(meta(["ETH", "BTC"]))]:
                await producer.send_and_wait(topics.top.name, value, key=key)
            second = await asyncio.wait_for(replica.wait_for_view(after=first), 30)
            assert symbols(second) == ["ETH", "BTC"]
            assert replica.stats.skipped_messages == 1
            assert replica.running
    finally:
        await producer.stop()
