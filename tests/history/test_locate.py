"""``Locator`` with a fake connection: what it asks the broker, and what it no longer can."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from aiokafka import TopicPartition

from tests.history.test_time_index import Fetched, records
from topcoins.history.errors import HistoryReadError
from topcoins.history.locate import BEGIN_REFRESH_S, Locator
from topcoins.history.raw_topics import RawTopic
from topcoins.history.stats import HistoryStats
from topcoins.history.time_index import RecordRef
from topcoins.schemas.records import RankingSnapshot

TOPIC = RawTopic("t.ranks.v1", RankingSnapshot)


@dataclass
class FakeConnection:
    """A partition holding ``log`` from ``log_start`` on; counts every broker call."""

    log: list[Fetched]
    log_start: int = 0
    calls: list[str] = field(default_factory=list)

    async def partition(self, topic: RawTopic) -> TopicPartition:
        return topic.tp

    async def begin(self, tp: TopicPartition) -> int:
        self.calls.append("begin")
        return self.log_start

    async def fetch(self, tp: TopicPartition, offset: int) -> list[Fetched]:
        self.calls.append(f"fetch {offset}")
        return [r for r in self.log if r.offset >= max(offset, self.log_start)][:2]


def locator(connection: FakeConnection, now: list[float]) -> Locator:
    return Locator(connection, HistoryStats(), monotonic=lambda: now[0])  # type: ignore[arg-type]


async def test_a_moment_between_records_read_before_asks_the_broker_nothing() -> None:
    connection = FakeConnection(records((0, 1000), (1, 2000), (2, 3000), (3, 4000)))
    now = [0.0]
    found = locator(connection, now)
    for offset in (0, 2):  # what earlier questions fetched
        await found._fetch(TOPIC.tp, offset)
    connection.calls.clear()
    answer = await found.find(TOPIC, 2500)
    assert answer.record == RecordRef(1, 2000, "s-1")
    assert connection.calls == ["begin"]  # the log start, once
    assert (await found.find(TOPIC, 3999)).record == RecordRef(2, 3000, "s-2")
    assert connection.calls == ["begin"]
    now[0] += BEGIN_REFRESH_S
    await found.find(TOPIC, 1500)
    assert connection.calls == ["begin", "begin"]  # asked again after BEGIN_REFRESH_S


async def test_a_record_retention_deleted_meanwhile_is_a_read_error_and_forgotten() -> None:
    connection = FakeConnection(records((0, 1000), (1, 2000), (2, 3000)))
    found = locator(connection, [0.0])
    await found._fetch(TOPIC.tp, 0)
    ref = (await found.find(TOPIC, 1500)).record
    assert ref == RecordRef(0, 1000, "s-0")
    found._raw.clear()  # not among the last records fetched
    connection.log_start = 2  # retention deleted offsets 0 and 1
    with pytest.raises(HistoryReadError, match="no longer holds offset 0"):
        await found.raw(TOPIC, ref)
    assert len(found._index(TOPIC.tp)) == 0  # the next question asks the broker afresh
