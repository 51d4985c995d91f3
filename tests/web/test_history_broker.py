"""``GET /?at=`` against a real broker, through the app's own history reader.

Two rankings and two price snapshots are published to fresh raw topics the way the
producers publish them (Kafka timestamp = ``fetched_at``), two hours in the past; the app
is built from settings alone, so its lifespan opens the ``HistoryReader``.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx

from tests.history.story import prices, ranking
from tests.streams.raw import fresh_topics, publish
from tests.web.factories import BUILD
from tests.web.replicas import StaticReplica
from topcoins.formats import iso_utc
from topcoins.schemas.records import utc_millis
from topcoins.settings import Settings
from topcoins.web.app import create_app


async def test_at_answers_the_join_in_force_then(bootstrap_servers: str) -> None:
    t0 = utc_millis(datetime.now(UTC) - timedelta(hours=2))
    first_ranking = ranking(0, t0, "BTC", "ETH", "USDT")
    first_prices = prices(0, t0 + timedelta(seconds=10), 60000.0)
    second_ranking = ranking(1, t0 + timedelta(seconds=60), "ETH", "BTC", "XRP")
    second_prices = prices(1, t0 + timedelta(seconds=70), 62000.0)
    topics = await fresh_topics(bootstrap_servers, "webhist")
    await publish(
        bootstrap_servers, topics, [first_ranking, first_prices, second_ranking, second_prices]
    )
    settings = Settings(
        kafka_bootstrap_servers=bootstrap_servers,
        topic_prefix=topics.ranks.name.removesuffix(".ranks.v1"),
    )
    app = create_app(settings, StaticReplica(), build=BUILD)

    def at(seconds: float) -> str:
        return iso_utc(t0 + timedelta(seconds=seconds)) or ""

    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        first = await client.get("/", params={"at": at(30)})
        second = await client.get("/", params={"at": at(90), "limit": "2"})
        second_csv = await client.get("/", params={"at": at(90), "format": "csv"})
        before = await client.get("/", params={"at": at(-1)})

    assert first.status_code == 200, first.text
    body = first.json()
    assert [(i["rank"], i["symbol"], i["price_usd"]) for i in body["data"]] == [
        (1, "BTC", 60000.0),
        (2, "ETH", 3000.0),
        (3, "USDT", 1.0),
    ]
    assert body["meta"] == {
        "at": at(30),
        "historical": True,
        "ranking_updated_at": at(0),
        "prices_updated_at": at(10),
        "total_ranked": 3,
        "provider_total": None,
        "count": 3,
        "limit": 200,
    }

    assert second.status_code == 200, second.text
    body = second.json()
    assert [(i["symbol"], i["price_usd"]) for i in body["data"]] == [
        ("ETH", 3100.0),
        ("BTC", 62000.0),
    ]
    assert body["meta"]["ranking_updated_at"] == at(60)
    assert body["meta"]["prices_updated_at"] == at(70)
    assert (body["meta"]["count"], body["meta"]["total_ranked"]) == (2, 3)
    assert list(csv.reader(io.StringIO(second_csv.text, newline=""))) == [
        ["Rank", "Symbol", "Price USD"],
        ["1", "ETH", "3100.0"],
        ["2", "BTC", "62000.0"],
        ["3", "XRP", ""],
    ]

    assert before.status_code == 404, before.text
    assert before.json()["error"] == "history_unavailable"
    assert before.json()["earliest"] == at(0)
