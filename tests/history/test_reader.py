"""``topcoins.history.HistoryReader`` on real brokers: as-of lookups, replay, and what they refuse.

Each test publishes its own snapshots, with known ``fetched_at`` (= Kafka timestamp), to
fresh raw topics. Times are a couple of hours in the past: recent enough for the 7-day
retention, old enough not to be in the future.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tests import wire
from tests.history.story import prices, ranking
from tests.streams.raw import fresh_topics, publish, publish_bytes
from topcoins.domain import AliasTable, JoinResult, join_top_list
from topcoins.history import (
    HistoryReader,
    HistoryUnavailable,
    TimeInFuture,
    replay,
    snapshots_at,
    top_list_at,
)
from topcoins.schemas import codec
from topcoins.schemas.records import PriceSnapshot, RankingSnapshot, utc_millis
from topcoins.schemas.topics import Topics

ALIASES = AliasTable()


@dataclass(frozen=True)
class Story:
    """Three rankings and three price snapshots, a minute apart, on fresh topics."""

    bootstrap: str
    topics: Topics
    rankings: tuple[RankingSnapshot, ...]
    prices: tuple[PriceSnapshot, ...]

    @property
    def t0(self) -> datetime:
        """When the first ranking was fetched."""
        return self.rankings[0].fetched_at

    def at(self, seconds: float) -> datetime:
        return self.t0 + timedelta(seconds=seconds)


def t0() -> datetime:
    return utc_millis(datetime.now(UTC) - timedelta(hours=2))


@pytest.fixture
async def story(bootstrap_servers) -> Story:
    start = t0()
    rankings = (
        ranking(0, start, "BTC", "ETH", "USDT"),
        ranking(1, start + timedelta(seconds=60), "BTC", "USDT", "ETH"),
        ranking(2, start + timedelta(seconds=120), "ETH", "BTC", "XRP"),
    )
    price_snapshots = tuple(
        prices(n, start + timedelta(seconds=60 * n + 10), 60000.0 + n) for n in range(3)
    )
    topics = await fresh_topics(bootstrap_servers)
    interleaved = [s for pair in zip(rankings, price_snapshots, strict=True) for s in pair]
    await publish(bootstrap_servers, topics, interleaved)
    return Story(bootstrap_servers, topics, rankings, price_snapshots)


def ids(pair):
    return tuple(s.snapshot_id if s is not None else None for s in pair)


async def test_snapshots_at_picks_the_latest_of_each_kind_at_or_before_the_moment(story):
    cases = [  # seconds after the first ranking -> (ranking, prices) in force
        (-0.001, (None, None)),
        (0, ("ranking-0", None)),
        (9.999, ("ranking-0", None)),
        (10, ("ranking-0", "prices-0")),
        (65, ("ranking-1", "prices-0")),
        (70, ("ranking-1", "prices-1")),
        (125, ("ranking-2", "prices-1")),
        (3600, ("ranking-2", "prices-2")),
    ]
    async with HistoryReader(story.bootstrap, story.topics, ALIASES) as reader:
        for seconds, expected in cases:
            assert ids(await reader.snapshots_at(story.at(seconds))) == expected, seconds


async def test_offsets_for_times_is_used_where_the_broker_answers_it_right(story, broker):
    async with HistoryReader(story.bootstrap, story.topics, ALIASES) as reader:
        assert ids(await reader.snapshots_at(story.at(65))) == ("ranking-1", "prices-0")
    # Apache Kafka answers ListOffsets by timestamp; Tansu answers offset 0 whatever the
    # time, which the reader notices and replaces with a binary search over timestamps.
    searched = reader.stats.timestamp_searches > 0
    assert searched is (broker.kind == "tansu") or broker.kind == "external"


async def test_snapshots_at_returns_the_decoded_snapshots(story):
    ranking_in_force, prices_in_force = await snapshots_at(
        story.bootstrap, story.topics, story.at(75)
    )
    assert ranking_in_force == story.rankings[1]
    assert prices_in_force == story.prices[1]


async def test_top_list_at_is_the_join_of_the_snapshots_in_force(story):
    result = await top_list_at(story.bootstrap, story.topics, story.at(65), ALIASES)

    assert result == join_top_list(story.rankings[1], story.prices[0], ALIASES)
    assert [row.symbol for row in result.rows] == ["BTC", "USDT", "ETH"]
    assert result.rows[0].price_usd == 60000.0


async def test_top_list_at_before_the_first_ranking_is_unavailable(story):
    with pytest.raises(HistoryUnavailable, match="oldest ranking snapshot retained") as caught:
        await top_list_at(story.bootstrap, story.topics, story.at(-1), ALIASES)
    assert caught.value.earliest == story.t0


async def test_a_ranking_without_prices_yet_gives_an_unpriced_list(story):
    result = await top_list_at(story.bootstrap, story.topics, story.at(5), ALIASES)

    assert result.meta.pricing_snapshot_id is None
    assert {row.price_usd for row in result.rows} == {None}


async def test_top_list_at_in_the_future_is_refused_without_asking_the_broker():
    topics = Topics.for_prefix("never-created")
    async with HistoryReader("127.0.0.1:1", topics, ALIASES) as reader:
        with pytest.raises(TimeInFuture, match="in the future"):
            await reader.top_list_at(datetime.now(UTC) + timedelta(minutes=1))


async def test_naive_moments_are_refused():
    async with HistoryReader("127.0.0.1:1", Topics.for_prefix("x"), ALIASES) as reader:
        with pytest.raises(ValueError, match="naive"):
            await reader.top_list_at(datetime(2026, 1, 1))


async def test_missing_topics_are_unavailable(bootstrap_servers):
    topics = Topics.for_prefix("never-published-history")
    with pytest.raises(HistoryUnavailable, match="does not exist"):
        await top_list_at(bootstrap_servers, topics, datetime.now(UTC), ALIASES)


async def test_asking_again_about_the_same_snapshots_reuses_the_join(story):
    async with HistoryReader(story.bootstrap, story.topics, ALIASES) as reader:
        first = await reader.top_list_at(story.at(75))
        same_pair = await reader.top_list_at(story.at(110))  # still ranking-1 + prices-1
        again = await reader.top_list_at(story.at(75))  # settled: not even a lookup

    assert first is same_pair is again
    assert reader.stats.joins == 1
    assert reader.stats.join_cache_hits == 2


async def test_moments_between_records_already_read_are_found_without_the_broker(story):
    seconds = [65, 75, 5, 125, 70, 100, 10, 9.999, 119.999, 60, 0, 3600, 64.5]
    async with HistoryReader(story.bootstrap, story.topics, ALIASES) as reader:
        answers = [ids(await reader.snapshots_at(story.at(s))) for s in seconds]
    fresh = [ids(await snapshots_at(story.bootstrap, story.topics, story.at(s))) for s in seconds]
    assert answers == fresh
    assert reader.stats.index_hits >= 6  # the later moments fall between records already read


PRESENTED: list[str] = []


def present_symbols(result: JoinResult) -> tuple[str, ...]:
    """A ``present`` that records each call (the reader runs it inline here)."""
    PRESENTED.append(result.meta.ranking_snapshot_id)
    return tuple(row.symbol for row in result.rows)


async def test_a_presented_list_is_kept_instead_of_the_join_and_presented_once(story):
    PRESENTED.clear()
    async with HistoryReader(story.bootstrap, story.topics, ALIASES) as reader:
        first = await reader.presented_at(story.at(75), present_symbols)
        same_pair = await reader.presented_at(story.at(110), present_symbols)
        other = await reader.presented_at(story.at(125), present_symbols)
        joined = await reader.top_list_at(story.at(75))  # the join itself is kept apart

    assert first == same_pair == ("BTC", "USDT", "ETH")
    assert other == ("ETH", "BTC", "XRP")
    assert PRESENTED == ["ranking-1", "ranking-2"]
    assert joined == join_top_list(story.rankings[1], story.prices[1], ALIASES)


async def test_replay_is_deterministic_and_ends_with_the_join_of_the_last_snapshots(story):
    first = await replay(story.bootstrap, story.topics, None, None, ALIASES)
    second = await replay(story.bootstrap, story.topics, None, None, ALIASES)

    assert first == second
    assert first.top_list == join_top_list(story.rankings[2], story.prices[2], ALIASES)
    assert (first.snapshots_read, first.generations, first.skipped) == (6, 6, 0)


async def test_replay_window_starts_from_fresh_state(story):
    async with HistoryReader(story.bootstrap, story.topics, ALIASES) as reader:
        from_second = await reader.replay(story.at(60), None)
        up_to = await reader.replay(None, story.at(65))
        with pytest.raises(HistoryUnavailable, match="no ranking snapshot"):
            await reader.replay(story.at(65), story.at(100))  # only prices-1 inside

    assert from_second.snapshots_read == 4
    assert from_second.top_list == join_top_list(story.rankings[2], story.prices[2], ALIASES)
    assert up_to.snapshots_read == 3
    assert up_to.top_list == join_top_list(story.rankings[1], story.prices[0], ALIASES)


async def test_replay_orders_by_fetched_at_not_by_arrival(bootstrap_servers):
    start = t0()
    late = ranking(1, start + timedelta(seconds=60), "ETH", "BTC")
    early = ranking(0, start, "BTC", "ETH")
    topics = await fresh_topics(bootstrap_servers)
    await publish(bootstrap_servers, topics, [late, early, late])  # a retried publish too

    result = await replay(bootstrap_servers, topics, None, None, ALIASES)

    assert result.top_list.meta.ranking_snapshot_id == "ranking-1"
    assert (result.snapshots_read, result.generations, result.skipped) == (3, 2, 1)


async def test_unreadable_messages_are_skipped_like_the_worker_does(story):
    junk_at = story.at(200)
    await publish_bytes(story.bootstrap, story.topics.ranks.name, b"\x00junk", junk_at)
    wrong_type = codec.encode(prices(9, story.at(201), 1.0))
    headers = [("schema", b"PriceSnapshot"), ("snapshot_id", b"prices-9")]
    await publish_bytes(
        story.bootstrap, story.topics.ranks.name, wrong_type, story.at(201), headers
    )

    async with HistoryReader(story.bootstrap, story.topics, ALIASES) as reader:
        ranking_in_force, _ = await reader.snapshots_at(story.at(300))
        replayed = await reader.replay(None, None)

    assert ranking_in_force == story.rankings[2]
    assert replayed.top_list.meta.ranking_snapshot_id == "ranking-2"
    assert replayed.skipped == 1  # the wrong type, told by its header; junk is found late


async def test_avro_valid_messages_with_out_of_range_timestamps_are_walked_past(story):
    # Valid Avro whose fetched_at (10^15 ms) is outside datetime's range, on both topics.
    ranks, prices_topic = story.topics.ranks.name, story.topics.prices.name
    await publish_bytes(story.bootstrap, ranks, wire.out_of_range("ranking"), story.at(200))
    await publish_bytes(story.bootstrap, prices_topic, wire.out_of_range("prices"), story.at(201))

    async with HistoryReader(story.bootstrap, story.topics, ALIASES) as reader:
        result = await reader.top_list_at(story.at(300))
        skipped = reader.stats.skipped_messages

    assert (result.meta.ranking_snapshot_id, result.meta.pricing_snapshot_id) == (
        "ranking-2",
        "prices-2",
    )
    assert skipped == 2


@pytest.mark.e2e  # needs a broker
async def test_snapshots_from_the_future_are_walked_past_and_counted(story):
    # The worker skips a snapshot fetched more than 5 minutes ahead of its clock; so does
    # the history: one stamped a day ahead (written "in the past", as a producer with a
    # skewed clock could), and one stamped and written 30 minutes ahead.
    ranks = story.topics.ranks.name
    now = datetime.now(UTC)
    for n, fetched_at, written_at in [
        (8, now + timedelta(days=1), story.at(200)),
        (9, now + timedelta(minutes=30), now + timedelta(minutes=30)),
    ]:
        future = codec.encode(ranking(n, utc_millis(fetched_at), "XRP", "BTC"))
        headers = [("snapshot_id", f"ranking-{n}".encode())]
        await publish_bytes(story.bootstrap, ranks, future, written_at, headers)

    async with HistoryReader(story.bootstrap, story.topics, ALIASES) as reader:
        joined = await reader.top_list_at(story.at(300))
        skipped_by_join = dict(reader.stats.skipped_by_reason)
        ranking_now, _ = await reader.snapshots_at(now)
        replayed = await reader.replay(None, None)

    assert joined.meta.ranking_snapshot_id == "ranking-2"  # the last valid one before it
    assert skipped_by_join == {"from_future": 1}
    assert ranking_now == story.rankings[2]
    assert replayed.top_list.meta.ranking_snapshot_id == "ranking-2"


async def test_snapshots_in_one_record_batch_are_all_found(bootstrap_servers):
    """Tansu under-reports a partition's end after a multi-record batch."""
    start = t0()
    rankings = [ranking(n, start + timedelta(seconds=n), "BTC", "ETH") for n in range(5)]
    topics = await fresh_topics(bootstrap_servers)
    await publish(bootstrap_servers, topics, rankings, batch=True)

    async with HistoryReader(bootstrap_servers, topics, ALIASES) as reader:
        latest, _ = await reader.snapshots_at(start + timedelta(minutes=5))
        middle, _ = await reader.snapshots_at(start + timedelta(seconds=2.5))
        replayed = await reader.replay(None, None)

    assert latest == rankings[4]
    assert middle == rankings[2]
    assert replayed.snapshots_read == 5
    assert replayed.top_list.meta.ranking_snapshot_id == "ranking-4"


async def test_a_stopped_reader_cannot_be_used_again():
    reader = HistoryReader("127.0.0.1:1", Topics.for_prefix("x"), ALIASES)
    async with reader:
        pass
    await reader.stop()  # safe twice
    with pytest.raises(RuntimeError, match="stopped"):
        await reader.start()
