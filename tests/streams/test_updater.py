"""The updater (``streams/updater.py``) through the agents' test context: which snapshots
it accepts, joins and publishes, backlogs included; no broker."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta

from tests.streams.worker_context import (
    MKTCAP_2020,
    PRICES_2020,
    VOLUME_2020,
    backlog_of,
    metric,
    put,
    table_rows,
)
from topcoins.schemas import codec
from topcoins.schemas.records import TopListMeta
from topcoins.schemas.topics import META_KEY
from topcoins.streams.updater import Outcome


async def test_ranking_then_prices_publish_two_complete_generations(worker, ranks, prices, top):
    assert await put(ranks, VOLUME_2020, b"cryptocompare") is Outcome.PUBLISHED
    first = top.take()
    assert await put(prices, PRICES_2020, b"coinmarketcap") is Outcome.PUBLISHED
    second = top.take()

    symbols = [a.symbol for a in VOLUME_2020.assets]
    for generation in (first, second):
        assert [key for key, _ in generation] == [*symbols, META_KEY]
        assert [row.rank for _, row in generation[:-1]] == list(range(1, 11))
        meta = generation[-1][1]
        assert isinstance(meta, TopListMeta)
        assert meta.symbols == tuple(symbols)
    assert {row.price_usd for _, row in first[:-1]} == {None}
    assert first[-1][1].unmatched == 10
    assert second[-1][1].unmatched == 0
    assert second[-1][1].pricing_snapshot_id == PRICES_2020.snapshot_id
    btc = second[0][1]
    assert (btc.symbol, btc.cmc_id, btc.price_usd, btc.match_rule) == (
        "BTC",
        1,
        12957.520086190707,
        "exact",
    )
    assert table_rows(worker) == {key: row for key, row in second[:-1]}
    assert worker.tables.latest["ranking"] == codec.encode(VOLUME_2020)
    assert worker.tables.latest["prices"] == codec.encode(PRICES_2020)


async def test_prices_before_any_ranking_are_kept_and_joined_later(worker, ranks, prices, top):
    assert await put(prices, PRICES_2020, b"coinmarketcap") is Outcome.STORED
    assert top.take() == []

    await put(ranks, VOLUME_2020, b"cryptocompare")

    meta = top.take()[-1][1]
    assert (meta.pricing_snapshot_id, meta.unmatched) == (PRICES_2020.snapshot_id, 0)


async def test_a_snapshot_from_the_future_is_skipped_and_blocks_nothing(
    worker, ranks, registry, top
):
    # Kept in force, a ranking "fetched" in 9999 would make every real one look stale.
    far = dataclasses.replace(
        VOLUME_2020, snapshot_id="far", fetched_at=datetime(9999, 12, 30, tzinfo=UTC)
    )
    assert await put(ranks, far, b"cryptocompare") is Outcome.FROM_FUTURE
    assert await put(ranks, VOLUME_2020, b"cryptocompare") is Outcome.PUBLISHED

    topic = worker.topics.ranks.get_topic_name()
    skipped = "topcoins_worker_skipped_messages_total"
    assert metric(registry, skipped, topic=topic, reason="from_future") == 1
    assert top.metas()[-1].ranking_snapshot_id == VOLUME_2020.snapshot_id


async def test_older_or_repeated_snapshot_is_ignored(worker, ranks, registry, top):
    await put(ranks, MKTCAP_2020, b"cryptocompare")
    top.take()

    assert await put(ranks, VOLUME_2020, b"cryptocompare") is Outcome.STALE
    assert await put(ranks, MKTCAP_2020, b"cryptocompare") is Outcome.DUPLICATE

    assert top.take() == []
    assert worker.tables.latest["ranking"] == codec.encode(MKTCAP_2020)
    topic = worker.topics.ranks.get_topic_name()
    skipped = "topcoins_worker_skipped_messages_total"
    assert metric(registry, skipped, topic=topic, reason="stale") == 1


async def test_a_newer_price_snapshot_replaces_the_one_in_force(worker, ranks, prices, top):
    await put(ranks, VOLUME_2020, b"cryptocompare")
    await put(prices, PRICES_2020, b"coinmarketcap")
    later = dataclasses.replace(
        PRICES_2020,
        snapshot_id="prices-2",
        fetched_at=PRICES_2020.fetched_at + timedelta(minutes=1),
        quotes=tuple(
            dataclasses.replace(q, price_usd=13000.0) if q.symbol == "BTC" else q
            for q in PRICES_2020.quotes
        ),
    )
    top.take()

    assert await put(prices, later, b"coinmarketcap") is Outcome.PUBLISHED

    assert table_rows(worker)["BTC"].price_usd == 13000.0
    assert top.take()[-1][1].pricing_snapshot_id == "prices-2"


async def test_join_metrics(worker, ranks, prices, registry):
    await put(ranks, MKTCAP_2020, b"cryptocompare")
    await put(prices, PRICES_2020, b"coinmarketcap")

    assert metric(registry, "topcoins_worker_joins_total") == 2
    assert metric(registry, "topcoins_worker_unmatched_assets") == 4
    assert metric(registry, "topcoins_worker_join_seconds_count") == 2
    assert metric(registry, "topcoins_worker_rows_written_total", kind="row") == 20
    assert metric(registry, "topcoins_worker_rows_written_total", kind="tombstone") == 0


async def test_stage_times_per_snapshot_kind(worker, ranks, prices, registry):
    await put(ranks, MKTCAP_2020, b"cryptocompare")
    await put(prices, PRICES_2020, b"coinmarketcap")

    stage = "topcoins_worker_stage_seconds_count"
    for kind in ("ranking", "prices"):
        for name in ("decode", "join", "write"):
            assert metric(registry, stage, kind=kind, stage=name) == 1, (kind, name)


async def test_a_backlog_is_stored_and_joined_once_at_its_end(
    worker, ranks, prices, top, highwater, registry
):
    snapshots = backlog_of(10)
    highwater["value"] = len(snapshots)  # offsets 0..9 are all already on the partition

    outcomes = [await put(ranks, snapshot, b"cryptocompare") for snapshot in snapshots]

    assert outcomes == [Outcome.BACKLOG] * 9 + [Outcome.PUBLISHED]
    assert [meta.ranking_snapshot_id for meta in top.metas()] == ["backlog-9"]
    assert worker.tables.latest["ranking"] == codec.encode(snapshots[-1])
    assert metric(registry, "topcoins_worker_backlog_snapshots_total") == 9
    assert metric(registry, "topcoins_worker_joins_total") == 1


async def test_a_backlogged_ranking_is_joined_with_the_latest_prices(
    worker, ranks, prices, top, highwater
):
    snapshots = backlog_of(3)
    highwater["value"] = 3
    for snapshot in snapshots[:2]:
        await put(ranks, snapshot, b"cryptocompare")
    highwater["value"] = 1  # the prices partition holds one message: caught up at once

    assert await put(prices, PRICES_2020, b"coinmarketcap") is Outcome.PUBLISHED

    meta = top.metas()[-1]
    assert (meta.ranking_snapshot_id, meta.pricing_snapshot_id) == ("backlog-1", "prices-1")


async def test_a_watermark_one_short_still_joins_the_last_snapshot(ranks, top, highwater):
    snapshots = backlog_of(5)
    highwater["value"] = len(snapshots) - 1  # Tansu-style under-report

    outcomes = [await put(ranks, snapshot, b"cryptocompare") for snapshot in snapshots]

    assert outcomes[-1] is Outcome.PUBLISHED
    assert top.metas()[-1].ranking_snapshot_id == "backlog-4"
    assert len(top.metas()) == 2  # the one before the last looked caught up too


async def test_a_pending_pair_is_published_when_the_last_message_is_unusable(ranks, top, highwater):
    snapshots = backlog_of(2)
    highwater["value"] = 3

    await put(ranks, snapshots[0], b"cryptocompare")
    await put(ranks, snapshots[1], b"cryptocompare")
    assert top.metas() == []

    assert await put(ranks, b"junk", b"cryptocompare") is Outcome.UNDECODABLE

    assert [meta.ranking_snapshot_id for meta in top.metas()] == ["backlog-1"]


async def test_a_repeat_of_the_snapshot_in_force_publishes_it_after_a_restart(worker, ranks, top):
    """A worker starts pending: its recovered tables may hold a pair never published."""
    worker.tables.latest.data["ranking"] = codec.encode(VOLUME_2020)  # as recovered

    assert await put(ranks, VOLUME_2020, b"cryptocompare") is Outcome.DUPLICATE
    assert [meta.ranking_snapshot_id for meta in top.metas()] == ["ranking-1"]

    assert await put(ranks, VOLUME_2020, b"cryptocompare") is Outcome.DUPLICATE
    assert len(top.metas()) == 1  # published once; no longer pending


async def test_backlogged_prices_without_any_ranking_wait_for_one(prices, top, highwater):
    highwater["value"] = 2

    assert await put(prices, PRICES_2020, b"coinmarketcap") is Outcome.BACKLOG
    later = dataclasses.replace(
        PRICES_2020, snapshot_id="prices-2", fetched_at=PRICES_2020.fetched_at + timedelta(1)
    )
    assert await put(prices, later, b"coinmarketcap") is Outcome.STORED
    assert top.sent == []


async def test_a_price_of_zero_or_below_is_published_as_null_and_counted(
    worker, ranks, prices, top, registry, caplog
):
    caplog.set_level(logging.INFO)
    await put(ranks, VOLUME_2020, b"cryptocompare")
    bad = {"BTC": 0.0, "ETH": -2.5}
    zeroed = dataclasses.replace(
        PRICES_2020,
        quotes=tuple(
            dataclasses.replace(q, price_usd=bad[q.symbol]) if q.symbol in bad else q
            for q in PRICES_2020.quotes
        ),
    )
    top.take()

    assert await put(prices, zeroed, b"coinmarketcap") is Outcome.PUBLISHED

    published = {value.symbol: value for _, value in top.take() if hasattr(value, "price_usd")}
    assert published["BTC"].price_usd is None and published["ETH"].price_usd is None
    assert all(row.price_usd is None or row.price_usd > 0 for row in table_rows(worker).values())
    assert metric(registry, "topcoins_worker_invalid_prices") == 2
    [line] = [r for r in caplog.records if r.getMessage() == "published top list"][-1:]
    ids = {q.cmc_id for q in zeroed.quotes if q.symbol in bad}
    assert set(line.invalid_prices) == ids
