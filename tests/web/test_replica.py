"""TopListReplica: message handling, the consume loop (with a fake consumer) and a real broker."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

from tests import wire
from tests.web.factories import SAMPLE_ROWS, coin, meta, status
from tests.web.fake_kafka import (
    STATUS_TP,
    TOPICS,
    TP,
    FakeLog,
    Record,
    eventually,
    generation,
    meta_message,
    records,
    row_message,
    status_message,
    symbols,
)
from tests.web.replicas import StaticReplica
from topcoins.schemas.topics import META_KEY, Topics
from topcoins.settings import Settings
from topcoins.web.replica import TopListReplica
from topcoins.web.view import TopListView


def new_replica(**kwargs: Any) -> TopListReplica:
    return TopListReplica(Settings(), TOPICS, retry_first_s=0.01, retry_max_s=0.02, **kwargs)


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

TOP = TOPICS.top.name
STATUS = TOPICS.status.name


async def test_consumes_from_the_beginning_without_a_group() -> None:
    log = FakeLog(records(generation(SAMPLE_ROWS)))
    replica = new_replica(consumer_factory=log.factory)
    assert not replica.running and not replica.caught_up
    async with replica:
        view = await asyncio.wait_for(replica.wait_for_view(), 5)
        assert symbols(view) == [row.symbol for row in SAMPLE_ROWS]
        assert replica.running
        await eventually(lambda: replica.stats.lag == 0 and replica.caught_up)
    assert not replica.running
    assert log.assigned[TOP] == [[TP]]
    assert log.seeks[TOP] == [(TP, "beginning")]
    assert log.stops[TOP] == 1


async def test_real_consumer_settings() -> None:
    settings = Settings(kafka_bootstrap_servers="k1:9092, k2:9092", consumer_fetch_wait_ms=7)
    consumer = TopListReplica(settings, TOPICS)._new_consumer(TOP)
    try:
        assert consumer._group_id is None
        assert consumer._fetcher is None  # not started: no connection was attempted
        assert consumer._client._bootstrap_servers == ["k1:9092", "k2:9092"]
        assert consumer._fetch_max_wait_ms == 7
        assert consumer._enable_auto_commit is False
        assert consumer._client._client_id == "topcoins-web"
    finally:
        await consumer.stop()
    status_consumer = TopListReplica(settings, TOPICS)._new_consumer(STATUS)
    try:
        assert status_consumer._client._client_id == "topcoins-web-status"
    finally:
        await status_consumer.stop()


async def test_new_generations_are_served_while_running() -> None:
    log = FakeLog(records(generation(SAMPLE_ROWS[:1])))
    async with new_replica(consumer_factory=log.factory) as replica:
        first = await asyncio.wait_for(replica.wait_for_view(), 5)
        log.append([(b"BTC", None), *generation(SAMPLE_ROWS[1:3])])
        second = await asyncio.wait_for(replica.wait_for_view(after=first), 5)
        assert symbols(second) == ["ETH", "USDT"]


async def test_start_failures_are_retried(caplog: pytest.LogCaptureFixture) -> None:
    log = FakeLog(records(generation(SAMPLE_ROWS[:1])), start_failures=2)
    with caplog.at_level(logging.DEBUG, logger="topcoins.topic_reader"):
        async with new_replica(consumer_factory=log.factory) as replica:
            await asyncio.wait_for(replica.wait_for_view(), 5)
    assert log.starts[TOP] == 3
    assert log.stops[TOP] == 3  # every consumer was closed, failed or not
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    # One warning per retry with the reason; the traceback only at DEBUG.
    assert len(retries) == 2 and all(r.levelno == logging.WARNING for r in retries)
    assert retries[0].exc_info is None and retries[0].reason  # type: ignore[attr-defined]
    assert retries[0].topic == TOP  # type: ignore[attr-defined]
    tracebacks = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert len(tracebacks) == 2


async def test_waits_for_the_topic_instead_of_auto_creating_it() -> None:
    log = FakeLog(records(generation(SAMPLE_ROWS[:1])), topics=())
    async with new_replica(consumer_factory=log.factory) as replica:
        await eventually(lambda: log.topic_checks[TOP] >= 3)
        assert log.assigned[TOP] == [] and not replica.running
        log.topics = (TOP,)
        await asyncio.wait_for(replica.wait_for_view(), 5)
        assert log.assigned[TOP] == [[TP]]


async def test_keeps_serving_and_resumes_after_a_consumer_failure() -> None:
    log = FakeLog(records(generation(SAMPLE_ROWS[:2])), batch_size=2)
    async with new_replica(consumer_factory=log.factory) as replica:
        first = await asyncio.wait_for(replica.wait_for_view(), 5)
        await eventually(lambda: replica.caught_up)
        log.fetch_failures = 1
        await eventually(lambda: log.starts[TOP] == 2 and replica.running)
        assert replica.view is first  # the last view is still served
        assert replica.caught_up  # and the replica stays ready
        log.append(generation(SAMPLE_ROWS[2:4]))
        second = await asyncio.wait_for(replica.wait_for_view(after=first), 5)
    assert symbols(second) == ["USDT", "WIF"]
    # the second consumer resumed after the last applied message, not from the beginning
    assert log.seeks[TOP] == [(TP, "beginning"), (TP, 3)]
    assert replica.stats.generations == 2


async def test_stop_is_idempotent_and_a_stopped_replica_cannot_restart() -> None:
    log = FakeLog([], topics=(TOP, STATUS))
    replica = new_replica(consumer_factory=log.factory)
    await replica.start()
    await replica.start()  # already started: no second set of tasks
    await eventually(lambda: replica.running)
    await replica.stop()
    await replica.stop()
    assert log.starts == {TOP: 1, STATUS: 1} and log.stops == {TOP: 1, STATUS: 1}
    with pytest.raises(RuntimeError, match="create a new one"):
        await replica.start()


async def test_stopping_before_starting_is_harmless() -> None:
    replica = new_replica(consumer_factory=FakeLog([]).factory)
    await replica.stop()
    assert not replica.running


# -- catching up before reporting ready ------------------------------------------------


def backlog(generations: int) -> list[Record]:
    """A top topic holding ``generations`` generations, each with its own snapshot id."""
    messages: list[tuple[bytes | None, bytes | None]] = []
    for number in range(1, generations + 1):
        messages += generation(SAMPLE_ROWS[: 1 + number % 5], snapshot=f"rank-{number:04d}")
    return records(messages)


async def watch(replica: TopListReplica, seen: list[tuple[str | None, bool]]) -> None:
    """Record (served snapshot, caught_up) whenever either changes."""
    while True:
        view = replica.view
        now = (None if view is None else view.ranking_snapshot_id, replica.caught_up)
        if not seen or seen[-1] != now:
            seen.append(now)
        await asyncio.sleep(0.001)


@pytest.mark.parametrize(
    "shortfall",
    [0, 1, 60],
    ids=["exact end offset", "one short", "tansu under-reports by one per batch"],
)
async def test_ready_only_with_the_last_generation_of_a_backlog(shortfall: int) -> None:
    log = FakeLog(backlog(20), batch_size=7, fetch_delay_s=0.01, end_offset_shortfall=shortfall)
    seen: list[tuple[str | None, bool]] = []
    async with new_replica(consumer_factory=log.factory) as replica:
        watcher = asyncio.create_task(watch(replica, seen))
        try:
            await eventually(lambda: replica.caught_up)
            await asyncio.sleep(0.02)  # let the watcher record the ready state
        finally:
            watcher.cancel()
    # older generations were served on the way, but never reported as ready
    assert any(snapshot is not None and not ready for snapshot, ready in seen)
    assert [snapshot for snapshot, ready in seen if ready] == ["rank-0020"]
    assert replica.stats.generations == 20


async def test_an_end_offset_that_never_comes_does_not_block_readiness(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = FakeLog(backlog(3), end_offset_shortfall=-5)  # the broker over-reports
    with caplog.at_level(logging.WARNING, logger="topcoins.topic_reader"):
        async with new_replica(consumer_factory=log.factory, idle_polls=3) as replica:
            await eventually(lambda: replica.caught_up)
            assert replica.view is not None and replica.view.ranking_snapshot_id == "rank-0003"
    assert any("treating the topic as read to its end" in r.getMessage() for r in caplog.records)


async def test_an_empty_top_topic_is_not_ready_until_a_generation_arrives() -> None:
    log = FakeLog([])
    async with new_replica(consumer_factory=log.factory) as replica:
        await eventually(lambda: replica.running)
        await asyncio.sleep(0.05)
        assert not replica.caught_up
        log.append(generation(SAMPLE_ROWS[:2]))
        await eventually(lambda: replica.caught_up)


# -- the status topic ------------------------------------------------------------------


async def test_statuses_are_applied_as_they_come() -> None:
    log = FakeLog(records(generation(SAMPLE_ROWS[:1])), topics=(TOP, STATUS))
    log.append([status_message(status("cryptocompare"))], topic=STATUS)
    async with new_replica(consumer_factory=log.factory) as replica:
        await eventually(lambda: "cryptocompare" in replica.statuses)
        failing = status("coinmarketcap", failures=1)
        log.append([status_message(failing), (b"coinmarketcap", b"junk")], topic=STATUS)
        await eventually(lambda: "coinmarketcap" in replica.statuses)
        assert replica.statuses["coinmarketcap"] == failing
        await eventually(lambda: replica.stats.skipped_status_messages == 1)
    assert replica.stats.status_messages_applied == 2
    assert replica.stats.generations == 1  # statuses are not generations
    assert log.assigned[STATUS] == [[STATUS_TP]]


async def test_a_missing_status_topic_holds_up_nothing() -> None:
    log = FakeLog(records(generation(SAMPLE_ROWS[:1])), topics=(TOP,))
    async with new_replica(consumer_factory=log.factory) as replica:
        await eventually(lambda: replica.caught_up and log.topic_checks[STATUS] >= 2)
        assert dict(replica.statuses) == {} and log.assigned[STATUS] == []
        log.append([status_message(status("coinmarketcap"))], topic=STATUS)
        log.topics = (TOP, STATUS)  # the producers created it
        await eventually(lambda: "coinmarketcap" in replica.statuses)


async def test_a_failing_status_consumer_does_not_disturb_the_list() -> None:
    log = FakeLog(
        records(generation(SAMPLE_ROWS[:1])),
        topics=(TOP, STATUS),
        failing_topic=STATUS,
        start_failures=3,
    )
    async with new_replica(consumer_factory=log.factory) as replica:
        await eventually(lambda: replica.caught_up)
        await eventually(lambda: log.starts[STATUS] == 4)
        assert log.starts[TOP] == 1 and replica.running


# -- a real broker ----------------------------------------------------------------------


async def new_topics(bootstrap_servers: str, *, with_status: bool) -> tuple[Topics, Settings]:
    from topcoins.kafka_admin import ensure_topics

    prefix = f"webtest-{uuid.uuid4().hex[:10]}"
    topics = Topics.for_prefix(prefix)
    settings = Settings(kafka_bootstrap_servers=bootstrap_servers, topic_prefix=prefix)
    await ensure_topics(
        bootstrap_servers, (topics.top, topics.status) if with_status else (topics.top,)
    )
    return topics, settings


async def test_real_broker_rows_then_meta_become_a_view(bootstrap_servers: str) -> None:
    from aiokafka import AIOKafkaProducer

    # No status topic: the replica serves the list and keeps waiting for it.
    topics, settings = await new_topics(bootstrap_servers, with_status=False)
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
            assert replica.running and replica.caught_up
            assert dict(replica.statuses) == {}
    finally:
        await producer.stop()


async def test_real_broker_a_late_replica_is_ready_with_the_full_current_list(
    bootstrap_servers: str,
) -> None:
    from aiokafka import AIOKafkaProducer

    topics, settings = await new_topics(bootstrap_servers, with_status=True)
    # Batched sends: multi-record batches, where Tansu under-reports the end offset.
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_servers, linger_ms=20)
    await producer.start()
    try:
        sent = []
        for number in range(1, 41):
            for key, value in generation(SAMPLE_ROWS, snapshot=f"rank-{number:04d}"):
                sent.append(await producer.send(topics.top.name, value, key=key))
        reports = [status("cryptocompare"), status("coinmarketcap", failures=2)]
        for report in reports:
            key, value = status_message(report)
            sent.append(await producer.send(topics.status.name, value, key=key))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()

    seen: list[tuple[str | None, bool]] = []
    async with TopListReplica(settings, topics) as replica:
        watcher = asyncio.create_task(watch(replica, seen))
        try:
            await eventually(lambda: replica.caught_up, timeout=30)
            await asyncio.sleep(0.02)  # let the watcher record the ready state
        finally:
            watcher.cancel()
        assert replica.view is not None and replica.view.ranking_snapshot_id == "rank-0040"
        assert [snapshot for snapshot, ready in seen if ready] == ["rank-0040"]
        await eventually(lambda: len(replica.statuses) == 2, timeout=30)
        assert replica.statuses["coinmarketcap"].consecutive_failures == 2


# -- messages that cannot be used never hold the replica back ---------------------------

_ETH = row_message(SAMPLE_ROWS[1])
BAD_TOP_MESSAGES = {
    "truncated": (_ETH[0], _ETH[1][: len(_ETH[1]) // 2]),
    "wrong marker": (_ETH[0], b"\xc3\x02" + _ETH[1][2:]),
    "unknown fingerprint": (_ETH[0], wire.unknown_fingerprint("top_coin", "ETH")),
    "row with an out-of-range timestamp": (_ETH[0], wire.out_of_range("top_coin", "ETH")),
    "meta with an out-of-range timestamp": (META_KEY.encode(), wire.out_of_range("top_list_meta")),
}


@pytest.mark.parametrize("bad", BAD_TOP_MESSAGES.values(), ids=BAD_TOP_MESSAGES.keys())
async def test_a_bad_top_message_is_skipped_and_the_next_generation_served(
    bad: tuple[bytes, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    log = FakeLog(records(generation(SAMPLE_ROWS[:1])))
    with caplog.at_level(logging.WARNING, logger="topcoins.web.replica"):
        async with new_replica(consumer_factory=log.factory) as replica:
            first = await asyncio.wait_for(replica.wait_for_view(), 5)
            log.append([bad, *generation(SAMPLE_ROWS[:2], snapshot="rank-0002")])
            second = await asyncio.wait_for(replica.wait_for_view(after=first), 5)
            assert all(reason is None for reason in replica.consumers.values())
    assert symbols(second) == ["BTC", "ETH"]
    assert replica.stats.skipped_messages == 1
    (logged,) = [r for r in caplog.records if r.getMessage() == "skipped a message"]
    assert (logged.topic, logged.partition, logged.offset) == (TOP, 0, 2)  # type: ignore[attr-defined]


_CMC = status_message(status("coinmarketcap"))
BAD_STATUS_MESSAGES = {
    "truncated": (_CMC[0], _CMC[1][:12]),
    "wrong marker": (_CMC[0], b"\x00\x01" + _CMC[1][2:]),
    "unknown fingerprint": (_CMC[0], wire.unknown_fingerprint("status", "coinmarketcap")),
    "out-of-range timestamp": (_CMC[0], wire.out_of_range("status", "coinmarketcap")),
}


@pytest.mark.parametrize("bad", BAD_STATUS_MESSAGES.values(), ids=BAD_STATUS_MESSAGES.keys())
async def test_a_bad_status_message_is_skipped_and_the_next_one_applied(
    bad: tuple[bytes, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    log = FakeLog(records(generation(SAMPLE_ROWS[:1])), topics=(TOP, STATUS))
    log.append([bad, status_message(status("cryptocompare"))], topic=STATUS)
    with caplog.at_level(logging.WARNING, logger="topcoins.web.replica"):
        async with new_replica(consumer_factory=log.factory) as replica:
            await eventually(lambda: "cryptocompare" in replica.statuses)
    assert replica.stats.skipped_status_messages == 1
    assert "coinmarketcap" not in replica.statuses
    (logged,) = [r for r in caplog.records if r.getMessage() == "skipped a status message"]
    assert (logged.topic, logged.offset) == (STATUS, 0)  # type: ignore[attr-defined]


def test_any_exception_a_message_provokes_is_logged_counted_and_skipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    replica = new_replica()
    real_apply = replica._builder.apply

    def apply(key: bytes | None, value: bytes | None) -> TopListView | None:
        if key == b"ETH":
            raise RuntimeError("unforeseen")
        return real_apply(key, value)

    monkeypatch.setattr(replica._builder, "apply", apply)
    messages = [row_message(SAMPLE_ROWS[0]), _ETH, meta_message(meta(["BTC"]))]
    with caplog.at_level(logging.WARNING, logger="topcoins.web.replica"):
        replica.apply_batches({TP: records(messages)})

    assert symbols(replica.view) == ["BTC"]
    assert replica.stats.skipped_messages == 1
    (logged,) = [r for r in caplog.records if r.getMessage() == "skipped a message"]
    assert logged.offset == 1 and logged.reason == "RuntimeError('unforeseen')"  # type: ignore[attr-defined]
