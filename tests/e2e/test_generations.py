"""No reader ever serves a list that mixes two generations, whatever the worker leaves.

The worker is killed after exactly ``KILLED_AFTER`` of the 10 rows of a generation (the
test-only hook ``TOPCOINS_TEST_KILL_AFTER_ROWS``), restarted with a duplicate of the
ranking in force waiting first, and the top topic is compacted by force. A web replica
that runs through all of it and a new one started after the compaction record every view
they publish; each must be one whole generation: the rows of exactly the snapshot pair
its meta names, as the join makes them.

Apache Kafka only: Tansu never compacts, and the scenario is about the compacted log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.e2e.helpers import read_topic
from tests.streams.raw import publish
from tests.streams.snapshots import prices_from_fixture, ranking_from_fixture
from tests.streams.test_worker_broker import WorkerProcesses, wait_ready
from topcoins.domain import AliasTable, join_top_list
from topcoins.kafka_admin import ensure_topics
from topcoins.schemas import codec
from topcoins.schemas.records import PriceSnapshot, RankingSnapshot, TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY, Topics
from topcoins.settings import Settings
from topcoins.streams.faults import KILLED_STATUS
from topcoins.web.replica import TopListReplica
from topcoins.web.view import TopListView

pytestmark = pytest.mark.e2e

ROWS = 10  # the fixture ranking's assets
KILLED_AFTER = 4
# Faust commits the offsets of handled messages every 2.8 s (broker_commit_interval).
COMMITTED_S = 3.5
# The log cleaner may compact anything but the newest 100 ms of the top topic.
AGGRESSIVE_COMPACTION = {
    "cleanup.policy": "compact",
    "segment.ms": "100",
    "min.cleanable.dirty.ratio": "0.001",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": "100",
}
Pair = tuple[str, str | None]


class ViewLog:
    """Every view a replica publishes, in order (wraps its view holder's ``publish``)."""

    def __init__(self, replica: TopListReplica) -> None:
        self.views: list[TopListView] = []
        holder = replica._holder
        publish_view = holder.publish

        def record(view: TopListView) -> None:
            self.views.append(view)
            publish_view(view)

        holder.publish = record  # type: ignore[method-assign]

    def pairs(self) -> list[Pair]:
        return [(v.ranking_snapshot_id, v.pricing_snapshot_id) for v in self.views]

    async def wait_for(self, pair: Pair, timeout: float = 30.0) -> None:
        await wait(lambda: pair in self.pairs(), timeout, f"a view of {pair}")


async def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f} s")
        await asyncio.sleep(0.05)


async def create_topics(bootstrap_servers: str, topics: Topics) -> None:
    """The raw and status topics by contract; the top topic compacted as often as it can be."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topics.top.name, 1, 1, topic_configs=AGGRESSIVE_COMPACTION)]
        )
    finally:
        await admin.close()
    await ensure_topics(bootstrap_servers, topics.all())


def doubled(prices: PriceSnapshot, snapshot_id: str, later: timedelta) -> PriceSnapshot:
    """Another price snapshot: every price times two, fetched ``later``."""
    quotes = tuple(
        dataclasses.replace(q, price_usd=q.price_usd * 2 if q.price_usd else q.price_usd)
        for q in prices.quotes
    )
    return dataclasses.replace(
        prices, snapshot_id=snapshot_id, fetched_at=prices.fetched_at + later, quotes=quotes
    )


def expected_views(ranking: RankingSnapshot, prices: list[PriceSnapshot | None]) -> dict:
    """Per snapshot pair, what a view of that generation serves, row by row."""
    aliases = AliasTable.load()
    expected = {}
    for snapshot in prices:
        result = join_top_list(ranking, snapshot, aliases)
        pair = (ranking.snapshot_id, None if snapshot is None else snapshot.snapshot_id)
        expected[pair] = [served_row(row) for row in result.rows]
    return expected


def served_row(row: TopCoin) -> tuple:
    """What a view serves of a joined row (no price, no price time)."""
    fetched = row.price_fetched_at if row.price_usd is not None else None
    return (row.symbol, row.cmc_id, row.price_usd, fetched)


def view_rows(view: TopListView) -> list[tuple]:
    return [(e.symbol, e.cmc_id, e.price_usd, e.price_fetched_at) for e in view.entries]


async def top_messages(bootstrap_servers: str, topic: str) -> list:
    return await asyncio.to_thread(read_topic, bootstrap_servers, topic)


async def test_no_replica_serves_a_mixed_list_after_a_kill_mid_generation_and_compaction(
    broker, tmp_path
):
    if broker.kind == "tansu":
        pytest.skip("Tansu never compacts a topic; the scenario needs the log cleaner")
    servers = broker.bootstrap_servers
    prefix = f"mix-{uuid.uuid4().hex[:8]}"
    topics = Topics.for_prefix(prefix)
    await create_topics(servers, topics)
    now = datetime.now(UTC).replace(microsecond=0)
    ranking = ranking_from_fixture(
        "cc_totalvolfull_2020-05-04_page0_limit10.json", snapshot_id="ranking-1", fetched_at=now
    )
    first = prices_from_fixture("cmc_listings_2020-10-24.json", snapshot_id="p-1", fetched_at=now)
    aborted = doubled(first, "p-2", timedelta(seconds=1))
    last = doubled(aborted, "p-3", timedelta(seconds=1))
    expected = expected_views(ranking, [None, first, aborted, last])
    settings = Settings(kafka_bootstrap_servers=servers, topic_prefix=prefix)
    workers = WorkerProcesses(tmp_path, servers)
    running = TopListReplica(settings, topics)
    running_views = ViewLog(running)
    try:
        async with running:
            # Generation 1 (no prices yet) and 2 are whole; the worker dies in generation 3.
            port, worker = workers.start(
                prefix, "data", TOPCOINS_TEST_KILL_AFTER_ROWS=f"3:{KILLED_AFTER}"
            )
            await wait_ready(port, worker)
            await publish(servers, topics, [ranking])
            await running_views.wait_for((ranking.snapshot_id, None))
            await asyncio.sleep(COMMITTED_S)  # the ranking's offset is committed
            await publish(servers, topics, [first])
            await running_views.wait_for((ranking.snapshot_id, first.snapshot_id))
            # Repeats of the prices in force (a producer retry) ahead of the new prices:
            # the restarted worker re-reads them all before it meets the new prices again.
            await publish(servers, topics, [first, first, first, aborted])
            assert await asyncio.to_thread(worker.wait, 30) == KILLED_STATUS

            # The fault happened: the topic ends with KILLED_AFTER rows of generation 3.
            after_kill = await top_messages(servers, topics.top.name)
            tail = after_kill[-KILLED_AFTER:]
            assert all(m.key != META_KEY.encode() for m in tail)
            assert {codec.decode_as(TopCoin, m.value).pricing_snapshot_id for m in tail} == {
                aborted.snapshot_id
            }
            assert aborted.snapshot_id not in {
                codec.decode_as(TopListMeta, m.value).pricing_snapshot_id
                for m in after_kill
                if m.key == META_KEY.encode()
            }
            aborted_offsets = {m.offset for m in tail}

            # Restart with a duplicate of the ranking in force waiting first. Faust hands
            # the two topics' messages out in turn, so it comes before the re-read new
            # prices: the worker republishes the pair in force over the aborted rows first.
            await publish(servers, topics, [ranking])
            port, worker = workers.start(prefix, "data")
            await wait_ready(port, worker)
            # The restarted worker first waits for the group to drop the killed member
            # (its 6 s session), longer on a loaded machine.
            try:
                await running_views.wait_for((ranking.snapshot_id, aborted.snapshot_id), 60)
            except TimeoutError as exc:
                logs = "".join(log.read_text()[-4000:] for log in workers.logs())
                raise AssertionError(f"{exc}; views {running_views.pairs()}; {logs}") from exc
            # A later generation closes the segment holding the restart's writes.
            await asyncio.sleep(0.3)
            await publish(servers, topics, [last])
            await running_views.wait_for((ranking.snapshot_id, last.snapshot_id))

            # Wait for the log cleaner to have removed the aborted rows.
            deadline = time.monotonic() + 30
            while True:
                messages = await top_messages(servers, topics.top.name)
                if not aborted_offsets & {m.offset for m in messages}:
                    break
                assert time.monotonic() < deadline, "the top topic was not compacted in 30 s"
                await asyncio.sleep(0.5)
            end = max(m.offset for m in messages) + 1
            assert len(messages) < end  # compacted: records are gone

            new = TopListReplica(settings, topics)
            new_views = ViewLog(new)
            async with new:
                await new_views.wait_for((ranking.snapshot_id, last.snapshot_id))
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 30) == 0
    finally:
        workers.close()

    print(f"running replica served {running_views.pairs()}; new one {new_views.pairs()}")
    for name, log in (("running", running_views), ("new", new_views)):
        for view in log.views:
            pair = (view.ranking_snapshot_id, view.pricing_snapshot_id)
            assert view_rows(view) == expected[pair], f"{name} replica served a mixed {pair}"
