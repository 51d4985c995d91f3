"""The agents through Faust's test context: no broker, real encoded snapshots in."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from tests.streams.snapshots import prices_from_fixture, ranking_from_fixture
from topcoins.schemas import codec
from topcoins.schemas.records import TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY
from topcoins.settings import Settings
from topcoins.streams.agents import Outcome
from topcoins.streams.app import build_worker

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

    async def send(self, *, key: str, value: bytes | None, **kwargs: object) -> asyncio.Future:
        self.sent.append((key, value))
        delivered = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    def take(self) -> list[tuple[str, object]]:
        """The messages sent since the last call, values decoded (None for a tombstone)."""
        out = [(k, codec.decode(v) if v is not None else None) for k, v in self.sent]
        self.sent.clear()
        return out


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
    assert await put(ranks, PRICES_2020, b"cryptocompare") is Outcome.WRONG_TYPE
    assert await put(ranks, VOLUME_2020, b"cryptocompare") is Outcome.PUBLISHED

    skipped = "topcoins_worker_skipped_messages_total"
    assert metric(registry, skipped, topic=topic, reason="undecodable") == 2
    assert metric(registry, skipped, topic=topic, reason="wrong_type") == 1
    assert [key for key, _ in top.take()][-1] == META_KEY


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
