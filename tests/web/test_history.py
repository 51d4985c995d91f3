"""``GET /?at=``: the list as it was at a moment, with a fake history reader.

The reader's errors map to 400 / 404 / 503, the answers have the live shapes with a
historical ``meta``, and the live list and its cache are never involved.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import pickle
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.web.factories import (
    BUILD,
    PRICED_AT,
    RANKED_AT,
    SAMPLE_ROWS,
    Clock,
    FakeHistory,
    TestClient,
    join_of,
    meta,
)
from tests.web.replicas import StaticReplica
from topcoins.domain import JoinResult
from topcoins.history import HistoryReadError, HistoryUnavailable, TimeInFuture
from topcoins.settings import Settings
from topcoins.web.app import create_app
from topcoins.web.encoding import csv_row, json_item
from topcoins.web.errors import HistoryReadFailed
from topcoins.web.history import HistoricalLists
from topcoins.web.params import Format
from topcoins.web.rendered import past_list_of
from topcoins.web.view import TopListView, view_of_join

AT = "2024-05-01T12:00:10Z"
AT_MOMENT = datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)


HistoryClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_history_client(clock: Clock) -> Iterator[HistoryClientFactory]:
    """``make_history_client(history, view=None)``: a TestClient of an app whose history
    is ``history`` and whose live replica serves ``view``."""
    clients: list[TestClient] = []

    def factory(history: Any, view: TopListView | None = None) -> TestClient:
        app = create_app(Settings(), StaticReplica(view), build=BUILD, clock=clock, history=history)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


HISTORICAL_META = {
    "at": "2024-05-01T12:00:10.000Z",
    "historical": True,
    "ranking_updated_at": "2024-05-01T12:00:00.000Z",
    "prices_updated_at": "2024-05-01T11:59:17.500Z",
    "total_ranked": 5,
    "provider_total": 5012,
    "count": 5,
    "limit": 200,
}


def test_json_has_the_live_shape_and_a_historical_meta(
    make_history_client: HistoryClientFactory, sample_view: TopListView
) -> None:
    # The live view and the historical join hold the same rows: same data, other meta.
    history = FakeHistory(join_of(SAMPLE_ROWS))
    client = make_history_client(history, sample_view)
    live = client.get("/").json()
    response = client.get(f"/?at={AT}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"data": live["data"], "meta": HISTORICAL_META}
    assert history.asked == [AT_MOMENT]


def test_json_limit_and_offset_spelling(make_history_client: HistoryClientFactory) -> None:
    history = FakeHistory(join_of(SAMPLE_ROWS))
    response = make_history_client(history).get(
        "/", params={"limit": "2", "at": "2024-05-01T14:00:10.123456+02:00"}
    )
    body = response.json()
    assert [item["symbol"] for item in body["data"]] == ["BTC", "ETH"]
    assert body["meta"] == {
        **HISTORICAL_META,
        "at": "2024-05-01T12:00:10.123Z",
        "count": 2,
        "limit": 2,
    }
    assert history.asked == [AT_MOMENT + timedelta(milliseconds=123)]


@pytest.mark.parametrize(
    ("query", "headers"),
    [(f"format=csv&at={AT}", {}), (f"at={AT}", {"Accept": "text/csv"})],
)
def test_csv_is_the_live_shape(
    make_history_client: HistoryClientFactory,
    sample_view: TopListView,
    query: str,
    headers: dict[str, str],
) -> None:
    client = make_history_client(FakeHistory(join_of(SAMPLE_ROWS)), sample_view)
    response = client.get(f"/?{query}", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text == client.get("/?format=csv").text
    limited = client.get(f"/?{query}&limit=2", headers=headers)
    assert list(csv.reader(io.StringIO(limited.text, newline=""))) == [
        ["Rank", "Symbol", "Price USD"],
        ["1", "BTC", "67012.34"],
        ["2", "ETH", "3120.5"],
    ]


def test_headers_carry_no_ages_and_a_strong_etag(make_history_client: HistoryClientFactory) -> None:
    client = make_history_client(FakeHistory(join_of(SAMPLE_ROWS)))
    for fmt in ("json", "csv"):
        response = client.get(f"/?at={AT}&format={fmt}")
        assert response.headers["last-modified"] == "Wed, 01 May 2024 11:59:17 GMT"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["vary"] == "Accept"
        assert "x-data-age" not in response.headers
        assert "x-data-stale" not in response.headers
        etag = response.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')
        again = client.get(f"/?at={AT}&format={fmt}", headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
        head = client.head(f"/?at={AT}&format={fmt}")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["etag"] == etag


def test_another_moment_with_other_data_has_another_etag(
    make_history_client: HistoryClientFactory,
) -> None:
    def at(moment: datetime) -> JoinResult:
        return join_of(SAMPLE_ROWS if moment == AT_MOMENT else SAMPLE_ROWS[:3])

    client = make_history_client(FakeHistory(at))
    first = client.get(f"/?at={AT}&format=csv")
    later = client.get(
        "/?at=2024-05-01T12:00:20Z&format=csv", headers={"If-None-Match": first.headers["etag"]}
    )
    assert later.status_code == 200
    assert later.headers["etag"] != first.headers["etag"]


def test_answers_in_force_at_two_moments_differ_only_in_meta_at(
    make_history_client: HistoryClientFactory,
) -> None:
    client = make_history_client(FakeHistory(join_of(SAMPLE_ROWS)))
    first = client.get(f"/?at={AT}").json()
    second = client.get("/?at=2024-05-01T12:00:20Z").json()
    assert second["data"] == first["data"]
    assert second["meta"] == {**first["meta"], "at": "2024-05-01T12:00:20.000Z"}


def test_a_list_from_before_the_first_price_snapshot(
    make_history_client: HistoryClientFactory,
) -> None:
    rows = [
        dataclasses.replace(
            row, price_usd=None, price_fetched_at=None, pricing_snapshot_id=None, cmc_id=None
        )
        for row in SAMPLE_ROWS[:2]
    ]
    closing = dataclasses.replace(
        meta(["BTC", "ETH"], unmatched=2), pricing_snapshot_id=None, prices_fetched_at=None
    )
    result = JoinResult(rows=tuple(rows), meta=closing)
    response = make_history_client(FakeHistory(result)).get(f"/?at={AT}")
    body = response.json()
    assert [item["price_usd"] for item in body["data"]] == [None, None]
    assert body["meta"]["prices_updated_at"] is None
    assert response.headers["last-modified"] == "Wed, 01 May 2024 12:00:00 GMT"


def test_the_live_list_is_neither_asked_nor_needed(
    make_history_client: HistoryClientFactory,
) -> None:
    # No live view at all: the live list would be a 503, the historical one is served.
    history = FakeHistory(join_of(SAMPLE_ROWS))
    client = make_history_client(history, view=None)
    assert client.get("/").status_code == 503
    assert client.get(f"/?at={AT}").status_code == 200
    assert history.asked == [AT_MOMENT]


def test_live_requests_never_ask_the_history(
    make_history_client: HistoryClientFactory, sample_view: TopListView
) -> None:
    history = FakeHistory(AssertionError("the live list must not read the history"))
    client = make_history_client(history, view=sample_view)
    assert client.get("/?limit=2&format=json").json()["meta"]["stale"] is False
    assert client.get("/?format=csv").status_code == 200
    assert history.asked == []


@pytest.mark.parametrize(
    ("error", "status", "body", "headers"),
    [
        (
            TimeInFuture(
                "2024-05-01T12:00:10.000Z is in the future (now is 2024-05-01T12:00:00.000Z): "
                "there is no list for it yet"
            ),
            400,
            {
                "error": "at_in_future",
                "detail": "2024-05-01T12:00:10.000Z is in the future (now is "
                "2024-05-01T12:00:00.000Z): there is no list for it yet; ask for a past moment",
            },
            {},
        ),
        (
            HistoryUnavailable(
                "no list for 2024-05-01T12:00:10.000Z: the oldest ranking snapshot retained "
                "in topcoins.ranks.v1 is from 2024-05-01T12:05:00.000Z",
                earliest=datetime(2024, 5, 1, 12, 5, tzinfo=UTC),
            ),
            404,
            {
                "error": "history_unavailable",
                "detail": "there is no list for 2024-05-01T12:00:10.000Z: the raw topics keep "
                "about 7 days, and the earliest moment they can answer is "
                "2024-05-01T12:05:00.000Z",
                "earliest": "2024-05-01T12:05:00.000Z",
            },
            {},
        ),
        (
            HistoryUnavailable("topic acme.ranks.v1 does not exist on kafka-0:9092"),
            404,
            {
                "error": "history_unavailable",
                "detail": "there is no list for 2024-05-01T12:00:10.000Z: the raw topics hold "
                "no readable ranking snapshot from before then (none may have been "
                "published yet)",
                "earliest": None,
            },
            {},
        ),
        (
            HistoryReadError("reading the raw topics from kafka-0:9092 failed: timeout"),
            503,
            {
                "error": "history_read_failed",
                "detail": "reading the list's history from Kafka failed; retry in 5 seconds",
            },
            {"retry-after": "5"},
        ),
        (
            OverflowError("date value out of range at kafka-0:9092"),  # anything unforeseen
            503,
            {
                "error": "history_read_failed",
                "detail": "reading the list's history from Kafka failed; retry in 5 seconds",
            },
            {"retry-after": "5"},
        ),
    ],
)
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_reader_errors_become_json_errors(
    make_history_client: HistoryClientFactory,
    error: Exception,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    fmt: str,
) -> None:
    response = make_history_client(FakeHistory(error)).get(f"/?at={AT}&format={fmt}")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == body
    for name, value in headers.items():
        assert response.headers[name] == value
    assert "kafka-0" not in response.text  # broker addresses stay in the logs


def test_a_read_failure_is_logged_with_its_cause(
    make_history_client: HistoryClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    error = HistoryReadError("reading the raw topics from kafka-0:9092 failed: timeout")
    make_history_client(FakeHistory(error)).get(f"/?at={AT}")
    (record,) = [r for r in caplog.records if r.name == "topcoins.web.history"]
    assert record.levelname == "WARNING"
    assert record.exc_info is not None and record.exc_info[1] is error
    assert record.at == "2024-05-01T12:00:10.000Z"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("at=yesterday", "invalid_at"),
        ("at=2024-05-01T12:00:10", "invalid_at"),
        (f"at={AT}&at={AT}", "invalid_at"),
        ("at=", "invalid_at"),
        (f"at={AT}&limit=0", "invalid_limit"),
        (f"at={AT}&format=xml", "invalid_format"),
        (f"at={AT}&when=now", "unknown_parameter"),
    ],
)
def test_bad_queries_with_at_are_400_without_asking_the_reader(
    make_history_client: HistoryClientFactory, query: str, code: str
) -> None:
    history = FakeHistory(join_of(SAMPLE_ROWS))
    response = make_history_client(history).get(f"/?{query}")
    assert response.status_code == 400
    assert response.json()["error"] == code
    assert history.asked == []


async def test_without_a_reader_it_is_a_503() -> None:
    # Before the lifespan has opened the app's reader, or after it has closed it.
    with pytest.raises(HistoryReadFailed, match="not running") as info:
        await HistoricalLists().response(AT_MOMENT, Format.JSON, 5)
    assert info.value.status_code == 503
    assert info.value.headers == {"Retry-After": "5"}


def test_view_of_join_is_the_view_the_replica_would_build(sample_view: TopListView) -> None:
    view = view_of_join(join_of(SAMPLE_ROWS))
    assert view.entries == sample_view.entries
    assert view.ranking_updated_at == RANKED_AT
    assert view.prices_updated_at == PRICED_AT
    assert (view.total_ranked, view.provider_total) == (5, 5012)


def test_a_past_list_holds_each_row_encoded_as_the_live_list_encodes_it(
    sample_view: TopListView,
) -> None:
    past = past_list_of(join_of(SAMPLE_ROWS))
    assert past.json_items == tuple(json_item(entry) for entry in sample_view.entries)
    assert past.csv_rows == tuple(csv_row(entry) for entry in sample_view.entries)
    assert (past.total_ranked, past.provider_total) == (5, 5012)
    assert (past.ranking_updated_at, past.prices_updated_at) == (RANKED_AT, PRICED_AT)
    assert pickle.loads(pickle.dumps(past)) == past  # it comes back from the worker process
