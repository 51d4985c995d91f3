"""The HTTP API through Starlette's TestClient against an in-memory view."""

from __future__ import annotations

import csv
import io
import json
import math

import httpx
import pytest

from tests.web.conftest import ClientFactory
from tests.web.factories import BUILD, SAMPLE_ROWS, Clock, coin, status, view_of
from tests.web.replicas import StaticReplica
from topcoins.settings import Settings
from topcoins.web.view import TopListView

EXPECTED_JSON = {
    "data": [
        {
            "rank": 1,
            "symbol": "BTC",
            "name": "Bitcoin",
            "price_usd": 67012.34,
            "cmc_id": 1,
            "volume_24h_usd": 35210000000.5,
            "market_cap_usd": 1320000000000.0,
            "percent_change_24h": -1.5,
            "price_fetched_at": "2024-05-01T11:59:17.500Z",
            "rank_fetched_at": "2024-05-01T12:00:00.000Z",
        },
        {
            "rank": 2,
            "symbol": "ETH",
            "name": "Ethereum",
            "price_usd": 3120.5,
            "cmc_id": 1027,
            "volume_24h_usd": 15900000000.0,
            "market_cap_usd": 375000000000.25,
            "percent_change_24h": 0.00001,
            "price_fetched_at": "2024-05-01T11:59:17.500Z",
            "rank_fetched_at": "2024-05-01T12:00:00.000Z",
        },
        {
            "rank": 3,
            "symbol": "USDT",
            "name": "Tether",
            "price_usd": 1.0002,
            "cmc_id": 825,
            "volume_24h_usd": 48000000000.0,
            "market_cap_usd": None,
            "percent_change_24h": None,
            "price_fetched_at": "2024-05-01T11:59:17.500Z",
            "rank_fetched_at": "2024-05-01T12:00:00.000Z",
        },
        {
            "rank": 4,
            "symbol": "WIF",
            "name": 'dogwifhat, "the hat"',
            "price_usd": None,
            "cmc_id": None,
            "volume_24h_usd": None,
            "market_cap_usd": None,
            "percent_change_24h": None,
            "price_fetched_at": None,
            "rank_fetched_at": "2024-05-01T12:00:00.000Z",
        },
        {
            "rank": 5,
            "symbol": "PEPE",
            "name": "Pepe",
            "price_usd": 0.00001234,
            "cmc_id": 24478,
            "volume_24h_usd": 820000000.25,
            "market_cap_usd": None,
            "percent_change_24h": None,
            "price_fetched_at": "2024-05-01T11:59:17.500Z",
            "rank_fetched_at": "2024-05-01T12:00:00.000Z",
        },
    ],
    "meta": {
        "ranking_updated_at": "2024-05-01T12:00:00.000Z",
        "prices_updated_at": "2024-05-01T11:59:17.500Z",
        "ranking_age_seconds": 31,
        "prices_age_seconds": 73,
        "stale": False,
        "stale_sources": [],
        "total_ranked": 5,
        "provider_total": 5012,
        "count": 5,
        "limit": 200,
    },
}

EXPECTED_CSV = (
    "Rank,Symbol,Price USD\r\n"
    "1,BTC,67012.34\r\n"
    "2,ETH,3120.5\r\n"
    "3,USDT,1.0002\r\n"
    "4,WIF,\r\n"
    "5,PEPE,0.00001234\r\n"
)


def test_json_by_default(make_client: ClientFactory, sample_view: TopListView) -> None:
    response = make_client(sample_view).get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["vary"] == "Accept"
    assert response.headers["last-modified"] == "Wed, 01 May 2024 11:59:17 GMT"
    assert response.headers["x-data-age"] == "73"
    assert response.headers["x-data-stale"] == "false"
    assert response.headers["etag"].startswith('W/"')
    assert response.json() == EXPECTED_JSON
    assert b'"price_usd":0.00001234' in response.content  # positional, never 1.234e-05


def test_json_limit(make_client: ClientFactory, sample_view: TopListView) -> None:
    body = make_client(sample_view).get("/?limit=2&format=json").json()
    assert body["data"] == EXPECTED_JSON["data"][:2]
    assert body["meta"] == {**EXPECTED_JSON["meta"], "count": 2, "limit": 2}


def test_csv_by_format(make_client: ClientFactory, sample_view: TopListView) -> None:
    response = make_client(sample_view).get("/?format=csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text == EXPECTED_CSV
    assert response.headers["content-length"] == str(len(EXPECTED_CSV))
    assert response.headers["etag"].startswith('"')
    assert response.headers["x-data-age"] == "73"
    assert response.headers["x-data-stale"] == "false"


def test_csv_limit(make_client: ClientFactory, sample_view: TopListView) -> None:
    response = make_client(sample_view).get("/", params={"limit": 1, "format": "csv"})
    assert response.text == "Rank,Symbol,Price USD\r\n1,BTC,67012.34\r\n"


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("text/csv", "text/csv; charset=utf-8"),
        ("text/csv;q=0.9, application/json;q=0.1", "text/csv; charset=utf-8"),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        ("text/html", "application/json"),
    ],
)
def test_accept_negotiation_without_format(
    make_client: ClientFactory, sample_view: TopListView, accept: str, media_type: str
) -> None:
    response = make_client(sample_view).get("/?limit=3", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type


def test_format_parameter_beats_accept(
    make_client: ClientFactory, sample_view: TopListView
) -> None:
    response = make_client(sample_view).get("/?format=json", headers={"Accept": "text/csv"})
    assert response.headers["content-type"] == "application/json"


def test_csv_quotes_symbols_with_commas_and_quotes(make_client: ClientFactory) -> None:
    view = view_of([coin("A,B", "Comma", 7, 2.5), coin('Q"T', "Quote", None, None)])
    response = make_client(view).get("/?format=csv")
    assert response.text == 'Rank,Symbol,Price USD\r\n1,"A,B",2.5\r\n2,"Q""T",\r\n'
    assert list(csv.reader(io.StringIO(response.text, newline=""))) == [
        ["Rank", "Symbol", "Price USD"],
        ["1", "A,B", "2.5"],
        ["2", 'Q"T', ""],
    ]


def test_null_price_stays_in_place(make_client: ClientFactory, sample_view: TopListView) -> None:
    client = make_client(sample_view)
    data = client.get("/").json()["data"]
    assert [item["price_usd"] is None for item in data] == [False, False, False, True, False]
    rows = list(csv.reader(io.StringIO(client.get("/?format=csv").text, newline="")))
    assert rows[4] == ["4", "WIF", ""]


def assert_bad_request(response: httpx.Response, code: str, detail: str) -> None:
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": code, "detail": detail}


@pytest.mark.parametrize("limit", ["0", "-3", "201", "ten", "2.0", ""])
def test_a_limit_that_is_not_an_integer_from_1_to_200_is_400_json(
    make_client: ClientFactory, sample_view: TopListView, limit: str
) -> None:
    response = make_client(sample_view).get(f"/?limit={limit}")
    detail = f"limit must be an integer from 1 to 200, got '{limit}'"
    assert_bad_request(response, "invalid_limit", detail)


@pytest.mark.parametrize(
    ("query", "code", "detail"),
    [
        (
            "limit=1&limit=2",
            "invalid_limit",
            "limit was given 2 times; give it once (limit must be an integer from 1 to 200)",
        ),
        ("format=xml", "invalid_format", "format must be 'json' or 'csv', got 'xml'"),
        (
            "format=csv&format=csv",
            "invalid_format",
            "format was given 2 times; give it once (json or csv)",
        ),
        (
            "size=3",
            "unknown_parameter",
            "unknown query parameter 'size'; allowed: limit (1 to 200), format (json or csv) "
            "and at (an ISO 8601 time with an offset)",
        ),
    ],
)
def test_bad_parameters_are_400_json(
    make_client: ClientFactory, sample_view: TopListView, query: str, code: str, detail: str
) -> None:
    assert_bad_request(make_client(sample_view).get(f"/?{query}"), code, detail)


def test_bad_parameters_are_400_even_before_data(make_client: ClientFactory) -> None:
    response = make_client(None).get("/?limit=0")
    assert response.status_code == 400


def test_limit_range_follows_the_ranking_depth(
    make_client: ClientFactory, sample_view: TopListView
) -> None:
    client = make_client(sample_view, Settings(ranking_depth=3))
    assert client.get("/").json()["meta"] == {**EXPECTED_JSON["meta"], "count": 3, "limit": 3}
    response = client.get("/?limit=4")
    assert response.status_code == 400
    assert response.json()["detail"] == "limit must be an integer from 1 to 3, got '4'"


def test_503_with_retry_after_before_any_data(make_client: ClientFactory) -> None:
    client = make_client(None)
    for path in ("/", "/?format=csv", "/diagnostics"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json() == {
            "error": "no_data_yet",
            "detail": "no top list has been received from Kafka yet; retry in 5 seconds",
        }


def test_new_view_is_served_as_soon_as_published(
    make_client: ClientFactory, sample_view: TopListView
) -> None:
    replica = StaticReplica()
    client = make_client(replica)
    assert client.get("/").status_code == 503
    replica.publish(sample_view)
    assert client.get("/?limit=1").json()["data"][0]["symbol"] == "BTC"
    replica.publish(view_of([coin("SOL", "Solana", 5426, 150.0)]))
    assert client.get("/?limit=1").json()["data"][0]["symbol"] == "SOL"


def test_etag_and_304(make_client: ClientFactory, sample_view: TopListView) -> None:
    replica = StaticReplica(sample_view)
    client = make_client(replica)
    first = client.get("/?limit=2")
    etag = first.headers["etag"]

    again = client.get("/?limit=2", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    opaque = etag.removeprefix("W/")
    assert client.get("/?limit=2", headers={"If-None-Match": f'"x", {opaque}'}).status_code == 304
    assert again.headers["x-data-stale"] == "false" and "content-type" not in again.headers
    assert client.get("/?limit=3", headers={"If-None-Match": etag}).status_code == 200
    assert client.get("/?limit=2&format=csv", headers={"If-None-Match": etag}).status_code == 200

    replica.publish(view_of([*SAMPLE_ROWS[:1], coin("ETH", "Ethereum", 1027, 9.0)]))
    changed = client.get("/?limit=2", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag


def test_head_sends_headers_only(make_client: ClientFactory, sample_view: TopListView) -> None:
    client = make_client(sample_view)
    full = client.get("/?format=csv")
    head = client.head("/?format=csv")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == full.headers["content-length"]
    assert head.headers["etag"] == full.headers["etag"]


@pytest.mark.parametrize("path", ["/coins", "/status/", "/readyz/"])
def test_unknown_path_is_404_json(
    make_client: ClientFactory, sample_view: TopListView, path: str
) -> None:
    response = make_client(sample_view).get(path, follow_redirects=False)
    assert response.status_code == 404  # no trailing-slash redirects
    assert response.json() == {
        "error": "not_found",
        "detail": f"there is no resource at {path}; try GET /?limit=10",
    }


@pytest.mark.parametrize("path", ["/", "/healthz", "/metrics"])
def test_wrong_method_is_405_json(
    make_client: ClientFactory, sample_view: TopListView, path: str
) -> None:
    response = make_client(sample_view).post(path)
    assert response.status_code == 405
    body = response.json()
    assert body["error"] == "method_not_allowed"
    assert body["detail"].startswith(f"POST is not allowed on {path}; allowed: ")
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}


def test_unexpected_failure_is_a_json_500_without_traceback(
    make_client: ClientFactory, sample_view: TopListView
) -> None:
    class Broken(StaticReplica):
        @property
        def view(self) -> TopListView:
            raise RuntimeError("secret internals")

    client = make_client(Broken(sample_view), raise_server_exceptions=False)
    response = client.get("/")
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "detail": "the server failed to answer this request; it has been logged",
    }
    assert "secret" not in response.text


def test_healthz(make_client: ClientFactory) -> None:
    response = make_client(None).get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_ready(make_client: ClientFactory, sample_view: TopListView) -> None:
    response = make_client(sample_view).get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "generation": 1,
        "total_ranked": 5,
        "ranking_updated_at": "2024-05-01T12:00:00.000Z",
        "stale": False,
        "stale_sources": [],
        "consumer_running": True,
        "stuck_consumers": {},
    }


def test_readyz_stays_ready_with_stale_data_and_no_consumer(
    make_client: ClientFactory, sample_view: TopListView, clock: Clock
) -> None:
    # A provider (or Kafka) outage: the data ages past every threshold and the consumer is
    # reconnecting; the replica keeps serving, flagged stale, and stays in the Service.
    client = make_client(StaticReplica(sample_view, running=False))
    clock.advance(3600)
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["stale"], body["consumer_running"]) == ("ready", True, False)
    assert body["stale_sources"] == ["ranking", "prices"]
    assert client.get("/").status_code == 200


class CatchingUp(StaticReplica):
    """A replica that has a view but has not yet read the top topic to its end."""

    @property
    def caught_up(self) -> bool:
        return False


@pytest.mark.parametrize(
    ("replica", "detail"),
    [
        (
            StaticReplica(None, running=True),
            "no top list has been received from Kafka yet; retry in 5 seconds",
        ),
        (
            StaticReplica(None, running=False),
            "no top list has been received from Kafka yet; the Kafka consumer is not running "
            "(connecting or reconnecting); retry in 5 seconds",
        ),
        (
            CatchingUp(view_of(SAMPLE_ROWS)),
            "still reading the top topic up to its end (catching up); retry in 5 seconds",
        ),
    ],
)
def test_readyz_not_ready(make_client: ClientFactory, replica: StaticReplica, detail: str) -> None:
    response = make_client(replica).get("/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"error": "not_ready", "detail": detail}


STUCK = {"test.top.v1": "3 failed attempts in a row; last error: RuntimeError('boom')"}


def test_readyz_names_a_stuck_consumer_and_stays_ready_once_ready(
    make_client: ClientFactory, sample_view: TopListView
) -> None:
    client = make_client(StaticReplica(sample_view, stuck=STUCK))
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["stuck_consumers"] == STUCK
    status = client.get("/status").json()
    assert status["replica"]["stuck_consumers"] == STUCK


def test_readyz_says_why_a_replica_that_never_became_ready_is_stuck(
    make_client: ClientFactory,
) -> None:
    response = make_client(StaticReplica(None, stuck=STUCK)).get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["stuck_consumers"] == STUCK
    assert "the consumer of test.top.v1 is stuck (3 failed attempts in a row" in body["detail"]


# -- freshness of GET / ---------------------------------------------------------------


def test_ages_follow_the_clock_and_stale_data_is_still_served(
    make_client: ClientFactory, sample_view: TopListView, clock: Clock
) -> None:
    client = make_client(sample_view)
    first = client.get("/?limit=1")
    assert first.json()["meta"]["prices_age_seconds"] == 73

    clock.advance(100)  # prices 173 s old at the end of this second: still under 190
    response = client.get("/?limit=1")
    meta = response.json()["meta"]
    assert (meta["ranking_age_seconds"], meta["prices_age_seconds"]) == (131, 173)
    assert (meta["stale"], meta["stale_sources"]) == (False, [])
    assert response.headers["x-data-age"] == "173"
    assert response.headers["etag"] == first.headers["etag"]  # same data, same tag

    clock.advance(20)  # prices 193 s old
    response = client.get("/?limit=1")
    assert response.status_code == 200
    meta = response.json()["meta"]
    assert (meta["stale"], meta["stale_sources"]) == (True, ["prices"])
    assert response.json()["data"][0]["symbol"] == "BTC"
    assert response.headers["x-data-stale"] == "true"
    assert response.headers["x-data-age"] == "193"
    assert response.headers["etag"] != first.headers["etag"]
    csv = client.get("/?limit=1&format=csv")
    assert csv.status_code == 200 and csv.headers["x-data-stale"] == "true"


def test_a_cached_fresh_copy_is_not_revalidated_once_stale(
    make_client: ClientFactory, sample_view: TopListView, clock: Clock
) -> None:
    client = make_client(sample_view)
    etag = client.get("/").headers["etag"]
    clock.advance(5)
    assert client.get("/", headers={"If-None-Match": etag}).status_code == 304
    clock.advance(200)
    revalidated = client.get("/", headers={"If-None-Match": etag})
    assert revalidated.status_code == 200
    assert revalidated.json()["meta"]["stale"] is True


def test_stale_after_seconds_setting(make_client: ClientFactory, sample_view: TopListView) -> None:
    client = make_client(sample_view, Settings(stale_after_seconds=30))
    meta = client.get("/").json()["meta"]
    assert (meta["stale"], meta["stale_sources"]) == (True, ["ranking", "prices"])


def test_a_reported_poll_interval_sets_the_threshold(
    make_client: ClientFactory, sample_view: TopListView
) -> None:
    replica = StaticReplica(sample_view)
    client = make_client(replica)
    assert client.get("/").json()["meta"]["stale"] is False
    # CoinMarketCap now polls every 15 s: prices are stale after 3 x 15 + 10 = 55 s
    replica.publish_status(status("coinmarketcap", poll_interval_seconds=15))
    assert client.get("/").json()["meta"]["stale_sources"] == ["prices"]


# -- GET /status -----------------------------------------------------------------------

# A source no producer has reported on: every field of a report is null.
UNKNOWN = {"status": "unknown"} | dict.fromkeys(
    "component poll_interval_seconds last_attempt_at last_success_at last_snapshot_id "  # noqa: SIM905
    "last_error last_error_kind last_error_at consecutive_failures".split()
)


def test_status_without_producer_reports_still_judges_the_served_data(
    make_client: ClientFactory, sample_view: TopListView
) -> None:
    response = make_client(sample_view).get("/status")
    assert (response.status_code, response.headers["cache-control"]) == (200, "no-cache")
    assert response.json() == {
        "stale": False,
        "stale_sources": [],
        "served": {
            "generation": 1,
            "ranking_snapshot_id": "rank-0001",
            "pricing_snapshot_id": "price-0001",
            "ranking_updated_at": "2024-05-01T12:00:00.000Z",
            "prices_updated_at": "2024-05-01T11:59:17.500Z",
        },
        "replica": {"caught_up": True, "consumer_running": True, "stuck_consumers": {}},
        "sources": {
            "cryptocompare": {
                "provides": "ranking",
                **UNKNOWN,
                "served_fetched_at": "2024-05-01T12:00:00.000Z",
                "age_seconds": 31,
                "stale_after_seconds": 190.0,
                "stale": False,
            },
            "coinmarketcap": {
                "provides": "prices",
                **UNKNOWN,
                "served_fetched_at": "2024-05-01T11:59:17.500Z",
                "age_seconds": 73,
                "stale_after_seconds": 190.0,
                "stale": False,
            },
        },
    }


def test_status_reports_each_producers_last_poll(
    make_client: ClientFactory, sample_view: TopListView, clock: Clock
) -> None:
    replica = StaticReplica(
        sample_view,
        statuses=[
            status("cryptocompare", poll_interval_seconds=30),
            status("coinmarketcap", failures=4),
        ],
    )
    client = make_client(replica)
    clock.advance(120)  # ranking 151 s old > 3 x 30 + 10; prices 193 s > 190
    body = client.get("/status").json()
    assert (body["stale"], body["stale_sources"]) == (True, ["ranking", "prices"])
    ranking = body["sources"]["cryptocompare"]
    assert ranking == {
        "provides": "ranking",
        "status": "ok",
        "component": "ranking",
        "poll_interval_seconds": 30.0,
        "last_attempt_at": "2024-05-01T12:00:30.250Z",
        "last_success_at": "2024-05-01T12:00:00.000Z",
        "last_snapshot_id": "rank-0001",
        "last_error": None,
        "last_error_kind": None,
        "last_error_at": None,
        "consecutive_failures": 0,
        "served_fetched_at": "2024-05-01T12:00:00.000Z",
        "age_seconds": 151,
        "stale_after_seconds": 100.0,
        "stale": True,
    }
    prices = body["sources"]["coinmarketcap"]
    assert prices["status"] == "failing"
    assert prices["consecutive_failures"] == 4
    assert prices["last_error"] == "CoinMarketCap answered 429 Too Many Requests"
    assert prices["last_error_kind"] == "rate_limited"
    assert prices["last_error_at"] == "2024-05-01T12:00:30.250Z"
    assert (prices["age_seconds"], prices["stale_after_seconds"], prices["stale"]) == (
        193,
        190.0,
        True,
    )


def test_status_stays_valid_json_with_a_nonsense_poll_interval(
    make_client: ClientFactory, sample_view: TopListView
) -> None:
    replica = StaticReplica(sample_view, statuses=[status(poll_interval_seconds=math.nan)])
    response = make_client(replica).get("/status")
    prices = json.loads(response.text, parse_constant=pytest.fail)["sources"]["coinmarketcap"]
    assert prices["poll_interval_seconds"] is None
    assert prices["stale_after_seconds"] == 190.0  # fell back to PRICING_POLL_SECONDS


def test_status_before_any_data(make_client: ClientFactory) -> None:
    response = make_client(StaticReplica(running=False)).get("/status")
    assert response.status_code == 200
    body = response.json()
    assert body["served"] is None
    assert (body["stale"], body["stale_sources"]) == (True, ["ranking", "prices"])
    assert body["replica"] == {
        "caught_up": False,
        "consumer_running": False,
        "stuck_consumers": {},
    }
    for source in body["sources"].values():
        assert (source["status"], source["age_seconds"], source["stale"]) == (
            "unknown",
            None,
            True,
        )
        assert source["served_fetched_at"] is None


def test_version(make_client: ClientFactory) -> None:
    response = make_client(None).get("/version")
    assert response.status_code == 200
    assert response.json() == {
        "version": BUILD.version,
        "git_commit": BUILD.git_commit,
        "build_time": BUILD.build_time,
    }


def test_diagnostics(make_client: ClientFactory, sample_view: TopListView) -> None:
    response = make_client(sample_view).get("/diagnostics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert [
        (d["rank"], d["symbol"], d["cmc_id"], d["match_rule"], d["price_usd"]) for d in body["data"]
    ] == [
        (1, "BTC", 1, "alias", 67012.34),
        (2, "ETH", 1027, "symbol", 3120.5),
        (3, "USDT", 825, "symbol", 1.0002),
        (4, "WIF", None, "unmatched", None),
        (5, "PEPE", 24478, "symbol", 0.00001234),
    ]
    assert body["match_rules"] == {"symbol": 3, "alias": 1, "unmatched": 1}
    assert body["meta"]["unmatched"] == 1


def test_non_ascii_names_are_utf8(make_client: ClientFactory) -> None:
    view = view_of([coin("ÆON", "Æon “coin”", 9, 1.5)])
    response = make_client(view).get("/")
    assert response.json()["data"][0]["name"] == "Æon “coin”"
    assert "Æon “coin”".encode() in response.content
    assert json.loads(response.content.decode("utf-8"))["data"][0]["symbol"] == "ÆON"
