"""The stream worker as its agent tests drive it: real encoded snapshots put through
Faust's test context, the top topic recorded instead of sent (no broker)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from tests.streams.snapshots import prices_from_fixture, ranking_from_fixture
from topcoins.domain import join_top_list
from topcoins.schemas import codec
from topcoins.schemas.records import TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY

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


async def put(agent, record_or_bytes, key):
    value = record_or_bytes if isinstance(record_or_bytes, bytes) else codec.encode(record_or_bytes)
    event = await agent.put(value, key=key)
    return agent.results[event.message.offset]


def table_rows(worker) -> dict[str, TopCoin]:
    return {k: codec.decode_as(TopCoin, v) for k, v in worker.tables.top_coins.items()}


def metric(registry, name, **labels):
    return registry.get_sample_value(name, labels) or 0.0


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


def recover_published(worker, ranking, prices=None) -> None:
    """Put the tables in the state a restarted worker recovers after publishing the pair."""
    result = join_top_list(ranking, prices, worker.updater.aliases)
    worker.tables.latest.data["ranking"] = codec.encode(ranking)
    if prices is not None:
        worker.tables.latest.data["prices"] = codec.encode(prices)
    for row in result.rows:
        worker.tables.top_coins.data[row.symbol] = codec.encode(row)
