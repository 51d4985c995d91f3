"""The agents (``streams/agents.py``) through Faust's test context: no broker; whatever a
message provokes is logged and counted, and the next one is processed."""

from __future__ import annotations

import time

import pytest

from tests import wire
from tests.streams.worker_context import (
    MKTCAP_2020,
    PRICES_2020,
    VOLUME_2020,
    backlog_of,
    metric,
    put,
)
from topcoins.schemas.topics import META_KEY
from topcoins.streams.agents import is_caught_up
from topcoins.streams.updater import Outcome


@pytest.mark.parametrize(
    ("offset", "highwater", "caught_up"),
    [
        (9, 10, True),  # the last message: the next one will get offset 10
        (8, 10, False),  # one more waits
        (0, 10, False),
        (9, 9, True),  # a watermark that under-reports by one still joins the last
        (9, None, True),  # unknown: join (an extra join is harmless, a missed one is not)
        (12, 10, True),  # a stale watermark
    ],
)
def test_is_caught_up(offset, highwater, caught_up):
    assert is_caught_up(offset, highwater) is caught_up


async def test_malformed_message_is_skipped_counted_and_the_next_processed(
    worker, ranks, registry, top
):
    topic = worker.topics.ranks.get_topic_name()

    assert await put(ranks, b"\x00not avro", b"cryptocompare") is Outcome.UNDECODABLE
    assert await put(ranks, b"\xc3\x01" + b"\x00" * 8 + b"x", b"x") is Outcome.UNDECODABLE
    # Valid Avro whose timestamp is out of datetime's range: skipped the same way.
    assert await put(ranks, wire.out_of_range("ranking"), b"cryptocompare") is Outcome.UNDECODABLE
    assert await put(ranks, PRICES_2020, b"cryptocompare") is Outcome.WRONG_TYPE
    assert await put(ranks, VOLUME_2020, b"cryptocompare") is Outcome.PUBLISHED

    skipped = "topcoins_worker_skipped_messages_total"
    assert metric(registry, skipped, topic=topic, reason="undecodable") == 3
    assert metric(registry, skipped, topic=topic, reason="wrong_type") == 1
    assert [key for key, _ in top.take()][-1] == META_KEY


async def test_a_message_whose_handling_raises_is_counted_and_the_next_processed(
    worker, ranks, registry, top, monkeypatch, caplog
):
    from topcoins.streams import updater

    real_join = updater.join_top_list
    calls = {"n": 0}

    def join_failing_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return real_join(*args, **kwargs)

    monkeypatch.setattr(updater, "join_top_list", join_failing_once)

    assert await put(ranks, VOLUME_2020, b"cryptocompare") is Outcome.FAILED
    assert await put(ranks, MKTCAP_2020, b"cryptocompare") is Outcome.PUBLISHED

    topic = worker.topics.ranks.get_topic_name()
    skipped = "topcoins_worker_skipped_messages_total"
    assert metric(registry, skipped, topic=topic, reason="failed") == 1
    record = next(r for r in caplog.records if r.getMessage().startswith("failed to handle"))
    assert (record.topic, record.offset, record.reason) == (topic, 0, "failed")
    assert top.metas()[-1].ranking_snapshot_id == MKTCAP_2020.snapshot_id


async def test_undecodable_message_is_logged_with_its_position(ranks, caplog):
    await put(ranks, b"junk", b"cryptocompare")

    record = next(r for r in caplog.records if r.getMessage().startswith("skipped input"))
    assert (record.topic, record.partition, record.offset) == ("unit.ranks.v1", 0, 0)
    assert record.reason == "undecodable"


async def test_consumer_lag_and_last_publish_time(ranks, top, highwater, registry, worker):
    assert metric(registry, "topcoins_worker_last_publish_timestamp_seconds") == 0
    snapshots = backlog_of(3)
    highwater["value"] = 10  # 7 more messages wait after the first three (offsets 0-2)
    for snapshot in snapshots[:2]:
        await put(ranks, snapshot, b"cryptocompare")
    topic = worker.topics.ranks.get_topic_name()
    lag = "topcoins_worker_consumer_lag_messages"
    assert metric(registry, lag, topic=topic) == 8
    assert metric(registry, "topcoins_worker_last_publish_timestamp_seconds") == 0

    highwater["value"] = 3  # the third message is the last one: caught up, joined
    before = time.time()
    await put(ranks, snapshots[2], b"cryptocompare")
    assert metric(registry, lag, topic=topic) == 0
    assert metric(registry, "topcoins_worker_last_publish_timestamp_seconds") >= before
