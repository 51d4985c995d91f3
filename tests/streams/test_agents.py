"""The agents through Faust's test context: no broker, real encoded snapshots in."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from tests import wire
from tests.streams.snapshots import prices_from_fixture, ranking_from_fixture
from topcoins.schemas import codec
from topcoins.schemas.records import TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY
from topcoins.settings import Settings
from topcoins.streams.agents import Outcome, is_caught_up
from topcoins.streams.app import build_worker
from topcoins.streams.faults import KillAfterRows
from topcoins.streams.join import join_top_list
from topcoins.streams.tables import SnapshotKind

VOLUME_2020 = ranking_from_fixture("cc_totalvolfull_2020-05-04_page0_limit10.json")
MKTCAP_2020 = ranking_from_fixture(
    "cc_mktcapfull_2020-05-04_page0_limit10.json",
    snapshot_id="ranking-2",
    fetched_at=VOLUME_2020.fetched_at + timedelta(minutes=1),
)
PRICES_2020 = prices_from_fixture("cmc_listings_2020-10-24.json")


class TopTopicRecorder:
    """Stands in for ``top.send``: records (key, value) in call order, delivers at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []
        self.headers: list[dict[str, str]] = []

    async def send(
        self, *, key: str, value: bytes | None, headers=None, **kwargs: object
    ) -> asyncio.Future:
        self.sent.append((key, value))
        self.headers.append({name: raw.decode() for name, raw in headers or ()})
        delivered = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    def take(self) -> list[tuple[str, object]]:
        """The messages sent since the last call, values decoded (None for a tombstone)."""
        out = [(k, codec.decode(v) if v is not None else None) for k, v in self.sent]
        self.sent.clear()
        self.headers.clear()
        return out

    def metas(self) -> list[TopListMeta]:
        """The generations closed since the last ``take``."""
        return [codec.decode_as(TopListMeta, v) for k, v in self.sent if k == META_KEY]


@pytest.fixture
def registry():
    return CollectorRegistry()


@pytest.fixture
def worker(registry):
    return build_worker(Settings(topic_prefix="unit"), registry=registry)


@pytest.fixture
def top(worker, monkeypatch):
    """Records what the agents send to the top topic."""
    recorder = TopTopicRecorder()
    monkeypatch.setattr(worker.topics.top, "send", recorder.send)
    return recorder


@pytest.fixture
async def ranks(worker, top):
    async with worker.agents.ranks.test_context() as agent:
        yield agent


@pytest.fixture
async def prices(worker, top):
    async with worker.agents.prices.test_context() as agent:
        yield agent


async def put(agent, record_or_bytes, key):
    value = record_or_bytes if isinstance(record_or_bytes, bytes) else codec.encode(record_or_bytes)
    event = await agent.put(value, key=key)
    return agent.results[event.message.offset]


def table_rows(worker) -> dict[str, TopCoin]:
    return {k: codec.decode_as(TopCoin, v) for k, v in worker.tables.top_coins.items()}


def metric(registry, name, **labels):
    return registry.get_sample_value(name, labels) or 0.0


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


async def test_symbols_that_leave_get_tombstones_between_rows_and_meta(worker, ranks, prices, top):
    await put(prices, PRICES_2020, b"coinmarketcap")
    await put(ranks, VOLUME_2020, b"cryptocompare")
    top.take()

    assert await put(ranks, MKTCAP_2020, b"cryptocompare") is Outcome.PUBLISHED

    sent = top.take()
    new_symbols = [a.symbol for a in MKTCAP_2020.assets]
    gone = ["BSV", "EOS", "ETC", "LTC", "TUSD", "XLM"]  # ranked by volume, not by market cap
    assert [key for key, _ in sent] == [*new_symbols, *gone, META_KEY]
    assert [value for key, value in sent if key in gone] == [None] * len(gone)
    assert set(table_rows(worker)) == set(new_symbols)
    assert sent[-1][1].unmatched == 4  # GAPS, HYN, PLF, ELAMA are not on CoinMarketCap


async def test_prices_before_any_ranking_are_kept_and_joined_later(worker, ranks, prices, top):
    assert await put(prices, PRICES_2020, b"coinmarketcap") is Outcome.STORED
    assert top.take() == []

    await put(ranks, VOLUME_2020, b"cryptocompare")

    meta = top.take()[-1][1]
    assert (meta.pricing_snapshot_id, meta.unmatched) == (PRICES_2020.snapshot_id, 0)


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
    from topcoins.streams import agents

    real_join = agents.join_top_list
    calls = {"n": 0}

    def join_failing_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return real_join(*args, **kwargs)

    monkeypatch.setattr(agents, "join_top_list", join_failing_once)

    assert await put(ranks, VOLUME_2020, b"cryptocompare") is Outcome.FAILED
    assert await put(ranks, MKTCAP_2020, b"cryptocompare") is Outcome.PUBLISHED

    topic = worker.topics.ranks.get_topic_name()
    skipped = "topcoins_worker_skipped_messages_total"
    assert metric(registry, skipped, topic=topic, reason="failed") == 1
    record = next(r for r in caplog.records if r.getMessage().startswith("failed to handle"))
    assert (record.topic, record.offset, record.reason) == (topic, 0, "failed")
    assert top.metas()[-1].ranking_snapshot_id == MKTCAP_2020.snapshot_id


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


async def test_undecodable_message_is_logged_with_its_position(ranks, caplog):
    await put(ranks, b"junk", b"cryptocompare")

    record = next(r for r in caplog.records if r.getMessage().startswith("skipped input"))
    assert (record.topic, record.partition, record.offset) == ("unit.ranks.v1", 0, 0)
    assert record.reason == "undecodable"


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


async def test_every_top_message_carries_its_generation_in_headers(worker, ranks, prices, top):
    await put(prices, PRICES_2020, b"coinmarketcap")
    await put(ranks, VOLUME_2020, b"cryptocompare")
    top.take()

    await put(ranks, MKTCAP_2020, b"cryptocompare")

    generation = {"producer": "stream-worker", "ranking_snapshot_id": "ranking-2"}
    generation["pricing_snapshot_id"] = PRICES_2020.snapshot_id
    keys = [key for key, _ in top.sent]
    by_key = dict(zip(keys, top.headers, strict=True))
    assert by_key["BTC"] == {**generation, "match_rule": "exact"}
    assert by_key["LTC"] == generation  # a tombstone: LTC left the list
    assert by_key[META_KEY] == generation


async def test_without_prices_the_pricing_header_is_absent(ranks, top):
    await put(ranks, VOLUME_2020, b"cryptocompare")

    assert top.headers[-1] == {"producer": "stream-worker", "ranking_snapshot_id": "ranking-1"}


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


def backlog_of(count: int) -> list:
    """``count`` rankings of the same assets, a minute apart, ids backlog-0.."""
    return [
        dataclasses.replace(
            VOLUME_2020,
            snapshot_id=f"backlog-{n}",
            fetched_at=VOLUME_2020.fetched_at + timedelta(minutes=n),
        )
        for n in range(count)
    ]


@pytest.fixture
def highwater(worker, monkeypatch):
    """Sets the high watermark the agents see for every partition (None: unknown)."""
    marks = {"value": None}
    monkeypatch.setattr(worker.app.consumer, "highwater", lambda tp: marks["value"])
    return marks


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


async def test_rows_found_on_the_topic_at_start_are_tombstoned_unless_ranked(
    worker, ranks, prices, top
):
    # A crash mid-generation can leave rows on the topic that the recovered table lacks.
    worker.updater.expect_rows({"ORPHAN", "BTC"})
    await put(prices, PRICES_2020, b"coinmarketcap")
    await put(ranks, VOLUME_2020, b"cryptocompare")

    sent = top.take()
    tombstones = [key for key, value in sent if value is None]
    assert tombstones == ["ORPHAN"]  # BTC is ranked: it gets a row, not a tombstone
    assert sent[-1][0] == META_KEY

    await put(ranks, MKTCAP_2020, b"cryptocompare")
    assert "ORPHAN" not in [key for key, value in top.take() if value is None]  # only once


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


def recover_published(worker, ranking, prices=None) -> None:
    """Put the tables in the state a restarted worker recovers after publishing the pair."""
    result = join_top_list(ranking, prices, worker.updater.aliases)
    worker.tables.latest.data["ranking"] = codec.encode(ranking)
    if prices is not None:
        worker.tables.latest.data["prices"] = codec.encode(prices)
    for row in result.rows:
        worker.tables.top_coins.data[row.symbol] = codec.encode(row)


@pytest.mark.parametrize("recovered_prices", [None, PRICES_2020], ids=["no prices", "prices"])
async def test_the_first_generation_after_a_start_rewrites_every_row(
    worker, ranks, top, recovered_prices
):
    # A worker killed mid-generation left rows of another generation on the topic; its
    # recovered table still holds the rows of the pair in force, so a meta written over
    # only the rows that differ from the table would close a mixed list.
    recover_published(worker, VOLUME_2020, recovered_prices)

    assert await put(ranks, VOLUME_2020, b"cryptocompare") is Outcome.DUPLICATE

    sent = top.take()
    assert [key for key, _ in sent] == [*(a.symbol for a in VOLUME_2020.assets), META_KEY]
    meta = sent[-1][1]
    assert {(row.ranking_snapshot_id, row.pricing_snapshot_id) for _, row in sent[:-1]} == {
        (meta.ranking_snapshot_id, meta.pricing_snapshot_id)
    }


async def test_later_generations_write_only_the_rows_that_changed(worker, ranks, top):
    await put(ranks, VOLUME_2020, b"cryptocompare")
    assert len(top.take()) == 11
    # The same pair again (what the pending path publishes): no row changed, meta only.
    await worker.updater._publish_in_force(SnapshotKind.RANKING)
    assert [key for key, _ in top.take()] == [META_KEY]


class Died(Exception):
    """Stands in for ``os._exit`` in the fault hook."""


@pytest.mark.parametrize(("generation", "rows"), [(1, 0), (1, 4), (2, 3), (2, 10)])
async def test_the_fault_hook_stops_after_k_delivered_rows_of_generation_g(
    worker, ranks, prices, top, monkeypatch, generation, rows
):
    def die(self) -> None:
        raise Died

    monkeypatch.setattr(KillAfterRows, "exit", die)
    worker.updater.fault = KillAfterRows(generation=generation, rows=rows)
    outcomes = [
        await put(ranks, VOLUME_2020, b"cryptocompare"),
        await put(prices, PRICES_2020, b"coinmarketcap"),
    ]

    assert outcomes[generation - 1] is Outcome.FAILED  # what the agent saw: the hook raised
    assert outcomes[: generation - 1] == [Outcome.PUBLISHED] * (generation - 1)
    sent = top.take()
    whole = 11 * (generation - 1)
    assert [key for key, _ in sent[whole:]] == [a.symbol for a in VOLUME_2020.assets][:rows]


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
