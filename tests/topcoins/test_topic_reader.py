"""TopicReader: batches in order, offsets, lag, when a topic counts as read to its end,
when it is stuck, and its start/stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

import pytest
from aiokafka import TopicPartition

from tests.web.fake_kafka import TOPICS, TP, FakeConsumer, FakeLog, Record, eventually, records
from topcoins.topic_reader import Message, TopicReader

TOP = TOPICS.top.name


def plain(count: int) -> list[tuple[bytes | None, bytes | None]]:
    return [(f"k{n}".encode(), f"v{n}".encode()) for n in range(count)]


class Recorder:
    """A batch handler that notes each batch's offsets and whether the reader was caught up."""

    def __init__(self) -> None:
        self.reader: TopicReader | None = None
        self.calls: list[tuple[list[int], bool]] = []
        self.lags: list[int] = []

    def __call__(self, batches: Mapping[TopicPartition, Sequence[Message]]) -> None:
        assert self.reader is not None
        offsets = [message.offset for messages in batches.values() for message in messages]
        self.calls.append((offsets, self.reader.caught_up))


async def run(reader: TopicReader, until: object, timeout: float = 5.0) -> None:
    task = asyncio.create_task(reader.run())
    try:
        await eventually(until, timeout)  # type: ignore[arg-type]
    finally:
        task.cancel()
        await asyncio.wait([task])


def reader_of(log: FakeLog, recorder: Recorder, idle_polls: int = 3) -> TopicReader:
    reader = TopicReader(
        TOP,
        1,
        recorder,
        lambda: log.factory(TOP),
        created_by="test",
        retry_first_s=0.01,
        retry_max_s=0.02,
        idle_polls=idle_polls,
        on_lag=recorder.lags.append,
    )
    recorder.reader = reader
    return reader


async def test_hands_over_every_batch_in_order_and_tracks_offsets_and_lag() -> None:
    recorder = Recorder()
    log = FakeLog(records(plain(12)), batch_size=5)
    reader = reader_of(log, recorder)
    await run(reader, lambda: reader.caught_up)
    assert [offsets for offsets, _ in recorder.calls] == [
        [0, 1, 2, 3, 4],
        [5, 6, 7, 8, 9],
        [10, 11],
    ]
    assert reader.next_offsets == {TP: 12}
    assert recorder.lags[:3] == [7, 2, 0] and reader.lag == 0
    assert not reader.running  # stopped with its task


@pytest.mark.parametrize("shortfall", [0, 1, 25])
async def test_caught_up_needs_the_end_offset_and_the_fetch_high_watermark(
    shortfall: int,
) -> None:
    # ListOffsets says 30 - shortfall (Tansu under-reports); the fetch high watermark is 30.
    recorder = Recorder()
    log = FakeLog(records(plain(30)), batch_size=5, end_offset_shortfall=shortfall)
    reader = reader_of(log, recorder)
    await run(reader, lambda: reader.caught_up)
    assert len(recorder.calls) == 6
    assert not any(caught_up for _, caught_up in recorder.calls)  # not before offset 30


async def test_idle_fetches_end_the_wait_for_an_offset_that_never_comes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    log = FakeLog(records(plain(4)), end_offset_shortfall=-10)  # over-reported end
    reader = reader_of(log, recorder, idle_polls=2)
    with caplog.at_level(logging.WARNING, logger="topcoins.topic_reader"):
        await run(reader, lambda: reader.caught_up)
    (warning,) = [r for r in caplog.records if "read to its end" in r.getMessage()]
    assert warning.end_offsets == {0: 14} and warning.positions == {0: 4}  # type: ignore[attr-defined]


async def test_an_empty_topic_is_caught_up_at_once() -> None:
    recorder = Recorder()
    reader = reader_of(FakeLog([]), recorder)
    await run(reader, lambda: reader.caught_up)
    assert recorder.calls == []


def failing_while(fail: dict[str, bool]) -> Callable[..., None]:
    """A batch handler that raises while ``fail["on"]``."""

    def handle(batches: Mapping[TopicPartition, Sequence[Message]]) -> None:
        if fail["on"]:
            raise RuntimeError("boom")

    return handle


async def test_a_handler_that_keeps_failing_makes_the_reader_stuck_until_it_recovers() -> None:
    fail = {"on": True}
    log = FakeLog(records(plain(3)))
    reader = TopicReader(
        TOP,
        1,
        failing_while(fail),
        lambda: log.factory(TOP),
        created_by="test",
        retry_first_s=0.01,
        retry_max_s=0.02,
        stuck_failures=3,
    )
    assert reader.stuck_reason is None
    task = asyncio.create_task(reader.run())
    try:
        await eventually(lambda: reader.stuck_reason is not None)
        reason = reader.stuck_reason
        assert reason is not None and "failed attempts in a row" in reason
        assert "RuntimeError('boom')" in reason
        assert reader.next_offsets == {}  # nothing was handled
        fail["on"] = False
        await eventually(lambda: reader.next_offsets == {TP: 3})
        assert reader.stuck_reason is None and reader.failures == 0
    finally:
        task.cancel()
        await asyncio.wait([task])


class Silent(FakeConsumer):
    """A consumer whose fetches return nothing although messages wait (a message it
    cannot fetch, say)."""

    async def getmany(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Record]]:
        await asyncio.sleep(0.005)
        return {}


async def test_no_progress_while_messages_wait_makes_the_reader_stuck() -> None:
    log = FakeLog(records(plain(3)))
    reader = TopicReader(
        TOP,
        1,
        lambda batches: None,
        lambda: Silent(log, TOP),
        created_by="test",
        retry_first_s=0.01,
        retry_max_s=0.02,
        stuck_after_s=0.1,
    )
    await run(reader, lambda: reader.stuck_reason is not None)
    reason = reader.stuck_reason
    assert reason is not None and "no progress for" in reason and "{0: 0}" in reason


async def test_an_idle_reader_at_the_end_is_not_stuck() -> None:
    recorder = Recorder()
    log = FakeLog(records(plain(3)))
    reader = reader_of(log, recorder)
    reader.progress.stuck_after_s = 0.01
    await run(reader, lambda: reader.caught_up and len(recorder.lags) > 5)
    assert reader.stuck_reason is None


async def test_async_with_reads_in_the_background_and_closes_the_consumer() -> None:
    recorder = Recorder()
    log = FakeLog(records(plain(3)))
    reader = reader_of(log, recorder)
    async with reader:
        await eventually(lambda: reader.caught_up)
        assert reader.running
    assert not reader.running
    assert log.starts[TOP] == log.stops[TOP] == 1
