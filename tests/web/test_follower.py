"""TopicFollower: batches in order, offsets, lag, and when a topic counts as read to its end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

import pytest
from aiokafka import TopicPartition

from tests.web.fake_kafka import TOPICS, TP, FakeLog, eventually, records
from topcoins.web.follower import Message, TopicFollower

TOP = TOPICS.top.name


def plain(count: int) -> list[tuple[bytes | None, bytes | None]]:
    return [(f"k{n}".encode(), f"v{n}".encode()) for n in range(count)]


class Recorder:
    """A batch handler that notes each batch's offsets and whether the follower was caught up."""

    def __init__(self) -> None:
        self.follower: TopicFollower | None = None
        self.calls: list[tuple[list[int], bool]] = []
        self.lags: list[int] = []

    def __call__(self, batches: Mapping[TopicPartition, Sequence[Message]]) -> None:
        assert self.follower is not None
        offsets = [message.offset for messages in batches.values() for message in messages]
        self.calls.append((offsets, self.follower.caught_up))


async def run(follower: TopicFollower, until: object, timeout: float = 5.0) -> None:
    task = asyncio.create_task(follower.run())
    try:
        await eventually(until, timeout)  # type: ignore[arg-type]
    finally:
        task.cancel()
        await asyncio.wait([task])


def follower_of(log: FakeLog, recorder: Recorder, idle_polls: int = 3) -> TopicFollower:
    follower = TopicFollower(
        TOP,
        1,
        recorder,
        log.factory,
        created_by="test",
        retry_first_s=0.01,
        retry_max_s=0.02,
        idle_polls=idle_polls,
        on_lag=recorder.lags.append,
    )
    recorder.follower = follower
    return follower


async def test_hands_over_every_batch_in_order_and_tracks_offsets_and_lag() -> None:
    recorder = Recorder()
    log = FakeLog(records(plain(12)), batch_size=5)
    follower = follower_of(log, recorder)
    await run(follower, lambda: follower.caught_up)
    assert [offsets for offsets, _ in recorder.calls] == [
        [0, 1, 2, 3, 4],
        [5, 6, 7, 8, 9],
        [10, 11],
    ]
    assert follower.next_offsets == {TP: 12}
    assert recorder.lags[:3] == [7, 2, 0] and follower.lag == 0
    assert not follower.running  # stopped with its task


@pytest.mark.parametrize("shortfall", [0, 1, 25])
async def test_caught_up_needs_the_end_offset_and_the_fetch_high_watermark(
    shortfall: int,
) -> None:
    # ListOffsets says 30 - shortfall (Tansu under-reports); the fetch high watermark is 30.
    recorder = Recorder()
    log = FakeLog(records(plain(30)), batch_size=5, end_offset_shortfall=shortfall)
    follower = follower_of(log, recorder)
    await run(follower, lambda: follower.caught_up)
    assert len(recorder.calls) == 6
    assert not any(caught_up for _, caught_up in recorder.calls)  # not before offset 30


async def test_idle_fetches_end_the_wait_for_an_offset_that_never_comes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    log = FakeLog(records(plain(4)), end_offset_shortfall=-10)  # over-reported end
    follower = follower_of(log, recorder, idle_polls=2)
    with caplog.at_level(logging.WARNING, logger="topcoins.web.follower"):
        await run(follower, lambda: follower.caught_up)
    (warning,) = [r for r in caplog.records if "read to its end" in r.getMessage()]
    assert warning.end_offsets == {0: 14} and warning.positions == {0: 4}  # type: ignore[attr-defined]


async def test_an_empty_topic_is_caught_up_at_once() -> None:
    recorder = Recorder()
    follower = follower_of(FakeLog([]), recorder)
    await run(follower, lambda: follower.caught_up)
    assert recorder.calls == []
