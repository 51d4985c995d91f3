"""A fake Kafka for the replica and topic reader tests: topics of records, consumers over them.

``FakeLog`` holds the records of the top and status topics (``TOPICS``) and the faults
to inject; ``FakeLog.factory`` is a ``ConsumerFactory`` whose ``FakeConsumer`` fetch,
seek, position, end offsets and high watermark read from it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError

from tests.web.factories import meta
from topcoins.schemas.codec import encode
from topcoins.schemas.records import ProducerStatus, TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY, Topics
from topcoins.web.view import TopListView

TOPICS = Topics.for_prefix("test")
TP = TopicPartition(TOPICS.top.name, 0)
STATUS_TP = TopicPartition(TOPICS.status.name, 0)


@dataclass
class Record:
    """What aiokafka's ConsumerRecord offers the replica."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def records(
    messages: Iterable[tuple[bytes | None, bytes | None]],
    start: int = 0,
    topic: str = TOPICS.top.name,
) -> list[Record]:
    return [
        Record(topic, 0, offset, key, value)
        for offset, (key, value) in enumerate(messages, start=start)
    ]


def row_message(row: TopCoin) -> tuple[bytes, bytes]:
    return row.symbol.encode(), encode(row)


def meta_message(closing: TopListMeta) -> tuple[bytes, bytes]:
    return META_KEY.encode(), encode(closing)


def generation(
    rows: list[TopCoin], snapshot: str = "rank-0001"
) -> list[tuple[bytes | None, bytes | None]]:
    closing = dataclasses.replace(meta([r.symbol for r in rows]), ranking_snapshot_id=snapshot)
    rows = [dataclasses.replace(row, ranking_snapshot_id=snapshot) for row in rows]
    return [*map(row_message, rows), meta_message(closing)]


def status_message(report: ProducerStatus) -> tuple[bytes, bytes]:
    return report.provider.encode(), encode(report)


class FakeConsumer:
    """Just enough of AIOKafkaConsumer over a ``FakeLog``: fetches, positions, end offsets."""

    def __init__(self, log: FakeLog, topic: str) -> None:
        self.log = log
        self.topic = topic
        self.position_of: dict[TopicPartition, int] = {}
        self.assigned: list[TopicPartition] = []

    async def start(self) -> None:
        self.log.starts[self.topic] += 1
        if self.topic == self.log.failing_topic and self.log.start_failures:
            self.log.start_failures -= 1
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")

    async def topics(self) -> set[str]:
        self.log.topic_checks[self.topic] += 1
        return set(self.log.topics)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = list(partitions)
        self.log.assigned[self.topic].append(list(partitions))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.log.seeks[self.topic].append((tp, offset))
        self.position_of[tp] = offset

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.log.seeks[self.topic].append((tp, "beginning"))
            self.position_of[tp] = 0

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {
            tp: max(0, len(self.log.records[tp.topic]) - self.log.end_offset_shortfall)
            for tp in partitions
        }

    async def position(self, tp: TopicPartition) -> int:
        return self.position_of[tp]

    async def getmany(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Record]]:
        if self.topic == self.log.failing_topic and self.log.fetch_failures:
            self.log.fetch_failures -= 1
            raise KafkaError("broker went away")
        batches = {}
        for tp in self.assigned:
            offset = self.position_of[tp]
            pending = self.log.records[tp.topic][offset:]
            if pending:
                batches[tp] = pending[: self.log.batch_size]
                self.position_of[tp] = offset + len(batches[tp])
        await asyncio.sleep(self.log.fetch_delay_s if batches else 0.005)
        return batches

    def highwater(self, tp: TopicPartition) -> int:
        return len(self.log.records[tp.topic])

    async def stop(self) -> None:
        self.log.stops[self.topic] += 1


@dataclass
class FakeLog:
    """The fake broker: its topics and records, faults to inject, and what consumers did.

    ``start_failures`` and ``fetch_failures`` hit consumers of ``failing_topic`` (the top
    topic unless changed); ``end_offset_shortfall`` makes ``end_offsets`` under-report like
    Tansu (positive) or over-report (negative).
    """

    top: list[Record]
    topics: tuple[str, ...] = (TOPICS.top.name,)
    batch_size: int = 1000
    fetch_delay_s: float = 0.0
    start_failures: int = 0
    fetch_failures: int = 0
    failing_topic: str = TOPICS.top.name
    end_offset_shortfall: int = 0

    def __post_init__(self) -> None:
        self.records: dict[str, list[Record]] = {TOPICS.top.name: self.top, TOPICS.status.name: []}
        self.starts: Counter[str] = Counter()
        self.stops: Counter[str] = Counter()
        self.topic_checks: Counter[str] = Counter()
        self.assigned: defaultdict[str, list[list[TopicPartition]]] = defaultdict(list)
        self.seeks: defaultdict[str, list[tuple[TopicPartition, Any]]] = defaultdict(list)

    def factory(self, topic: str) -> FakeConsumer:
        return FakeConsumer(self, topic)

    def append(
        self, messages: Iterable[tuple[bytes | None, bytes | None]], topic: str = TOPICS.top.name
    ) -> None:
        log = self.records[topic]
        log.extend(records(messages, start=len(log), topic=topic))


async def eventually(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def symbols(view: TopListView | None) -> list[str]:
    assert view is not None
    return [entry.symbol for entry in view.entries]
