"""CoinMarketCapClient against recorded CoinMarketCap responses (no network)."""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FIXTURES, load_fixture
from tests.producers.conftest import API_KEY, Recorder, json_response
from topcoins.producers.budget import CreditLedger
from topcoins.producers.coinmarketcap import LISTINGS_PATH, QUOTES_PATH, CoinMarketCapClient
from topcoins.producers.errors import (
    AuthError,
    BadResponseError,
    LocalLimitError,
    ParameterError,
    RateLimitError,
    ServerError,
    UpstreamTimeout,
)
from topcoins.producers.ratelimit import Pacer
from topcoins.schemas.codec import decode_as, encode
from topcoins.schemas.records import PriceSnapshot

BASE_URL = "https://pro-api.coinmarketcap.test"
LISTING_FIXTURES = sorted(path.name for path in Path(FIXTURES).glob("cmc_listings_*.json"))
FIXED_NOW = datetime(2024, 9, 17, 16, 0, 38, 490123, tzinfo=UTC)


def envelope(name: str) -> dict[str, Any]:
    """A fixture as a full body; the data-only captures get a body without ``status``."""
    body = load_fixture(name)
    return {"data": body} if isinstance(body, list) else body


_BTC = load_fixture("cmc_listings_2024-09-17T1600Z_limit20.json")["data"][0]


def listing(cmc_id: int, symbol: str = "AAA", rank: int | None = 1) -> dict[str, Any]:
    """A listing item with the fields of the recorded BTC entry that we read, and a new id."""
    usd = {key: _BTC["quote"]["USD"][key] for key in ("price", "volume_24h", "last_updated")}
    return {
        "id": cmc_id,
        "name": _BTC["name"],
        "symbol": symbol,
        "slug": symbol.lower(),
        "cmc_rank": rank,
        "last_updated": _BTC["last_updated"],
        "quote": {"USD": usd},
    }


def page(items: list[dict[str, Any]], total_count: int | None = None) -> httpx.Response:
    status = {"error_code": 0, "error_message": None, "total_count": total_count}
    return json_response(200, {"status": status, "data": items})


def error_body(code: int, message: str) -> dict[str, Any]:
    body = copy.deepcopy(load_fixture("cmc_error_1002_api-key-missing_2020-03-23.json"))
    body["status"].update(error_code=code, error_message=message)
    return body


async def fetch(make_http, recorder: Recorder, depth: int = 5000, key: str = API_KEY):
    client = CoinMarketCapClient(make_http(recorder, BASE_URL), key, now=lambda: FIXED_NOW)
    return await client.fetch_listings(depth)


@pytest.mark.parametrize("name", LISTING_FIXTURES)
async def test_every_recorded_listing_parses(make_http, name):
    body = envelope(name)
    data = body["data"]
    recorder = Recorder(json_response(200, body))

    snapshot = await fetch(make_http, recorder, depth=len(data))  # the recorded request

    assert len(snapshot.quotes) == len(data)
    assert [q.cmc_id for q in snapshot.quotes] == [item["id"] for item in data]
    assert [q.cmc_rank for q in snapshot.quotes] == [item["cmc_rank"] for item in data]
    assert [q.price_usd for q in snapshot.quotes] == [
        item["quote"]["USD"]["price"] for item in data
    ]
    assert all(q.last_updated is not None and q.last_updated.tzinfo is UTC for q in snapshot.quotes)
    assert snapshot.total_count == body.get("status", {}).get("total_count")


async def test_exact_values_and_snapshot_metadata(make_http):
    recorder = Recorder(json_response(200, envelope("cmc_listings_2024-09-17T1600Z_limit20.json")))

    snapshot = await fetch(make_http, recorder, depth=20)

    btc, shib = snapshot.quotes[0], snapshot.quotes[12]
    assert (btc.cmc_id, btc.symbol, btc.name, btc.slug, btc.cmc_rank) == (
        1,
        "BTC",
        "Bitcoin",
        "bitcoin",
        1,
    )
    assert btc.price_usd == 61137.27250669717
    assert btc.volume_24h_usd == 34883015919.87704
    assert btc.last_updated == datetime(2024, 9, 17, 15, 59, tzinfo=UTC)
    assert shib.symbol == "SHIB"
    assert shib.price_usd == 1.3485738734875127e-05  # exponent notation in the body
    assert snapshot.total_count == 9813
    assert snapshot.fetched_at == datetime(2024, 9, 17, 16, 0, 38, 490000, tzinfo=UTC)


async def test_fetched_at_is_when_the_answer_arrived_not_after_parsing_it(make_http, monkeypatch):
    """Freshness is measured from the provider's answer: parsing and validating a large
    listing take tens of milliseconds, which must count against the served age."""
    from topcoins.producers import coinmarketcap

    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    parse_page = coinmarketcap.parse_listings_page

    def slow_parse(*args: Any) -> Any:
        clock[0] = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)  # parsing takes 5 s
        return parse_page(*args)

    monkeypatch.setattr(coinmarketcap, "parse_listings_page", slow_parse)
    recorder = Recorder(json_response(200, envelope("cmc_listings_2024-09-17T1600Z_limit20.json")))
    client = CoinMarketCapClient(make_http(recorder, BASE_URL), API_KEY, now=lambda: clock[0])

    snapshot = await client.fetch_listings(20)

    assert snapshot.fetched_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert len(snapshot.snapshot_id) == 32
    assert int(snapshot.snapshot_id, 16) >= 0


async def test_cross_provider_edge_cases_are_kept_as_given(make_http):
    recorder = Recorder(json_response(200, envelope("cmc_listings_2022-12-16.json")))

    snapshot = await fetch(make_http, recorder, depth=100)

    by_id = {q.cmc_id: q for q in snapshot.quotes}
    assert by_id[4172].symbol == "LUNC"
    assert by_id[16086].symbol == "BTT"
    assert by_id[16086].price_usd == 6.410400031075256e-07
    assert by_id[11419].name == "Toncoin"


@pytest.mark.parametrize(
    ("name", "ranks"),
    [
        ("cmc_listings_2020-06-30_sort-volume24h_limit10.json", [3, 1, 2, 7, 5, 10, 4, 6, 17, 21]),
        (
            "cmc_listings_sandbox_2022-11-16_random-data.json",
            [7879, 9266, 6972, 479, 3544, 8915, 8997, 9419, 4236, 6118],
        ),
    ],
)
async def test_array_order_is_kept_not_sorted_by_rank(make_http, name, ranks):
    recorder = Recorder(json_response(200, envelope(name)))

    snapshot = await fetch(make_http, recorder, depth=10)

    assert [q.cmc_rank for q in snapshot.quotes] == ranks


async def test_dai_before_leo_as_the_provider_listed_them(make_http):
    recorder = Recorder(json_response(200, envelope("cmc_listings_2024-09-17T1622Z_limit20.json")))

    snapshot = await fetch(make_http, recorder, depth=20)

    symbols = [q.symbol for q in snapshot.quotes]
    assert symbols.index("DAI") < symbols.index("LEO")
    assert [q.cmc_rank for q in snapshot.quotes][16:18] == [18, 17]


async def test_top_100_page_with_rank_101_and_without_rank_65(make_http):
    recorder = Recorder(json_response(200, envelope("cmc_listings_2020-10-24.json")))

    snapshot = await fetch(make_http, recorder, depth=100)

    ranks = [q.cmc_rank for q in snapshot.quotes]
    assert len(ranks) == 100
    assert 101 in ranks
    assert 65 not in ranks


async def test_missing_or_null_price_becomes_none_never_zero(make_http):
    body = envelope("cmc_listings_2024-09-17T1600Z_limit20.json")
    body["data"][0]["quote"]["USD"]["price"] = None
    del body["data"][1]["quote"]["USD"]["price"]
    del body["data"][2]["quote"]["USD"]
    del body["data"][3]["quote"]
    recorder = Recorder(json_response(200, body))

    snapshot = await fetch(make_http, recorder, depth=20)

    assert [q.price_usd for q in snapshot.quotes[:4]] == [None, None, None, None]
    assert snapshot.quotes[2].volume_24h_usd is None
    assert snapshot.quotes[2].last_updated == datetime(2024, 9, 17, 15, 58, tzinfo=UTC)
    assert snapshot.quotes[4].price_usd == 134.72931937058257


async def test_request_carries_key_in_header_never_in_url(make_http):
    recorder = Recorder(json_response(200, envelope("cmc_listings_2021-04-20.json")))

    await fetch(make_http, recorder, depth=100)

    request = recorder.requests[0]
    assert request.url.path == LISTINGS_PATH
    assert recorder.params() == {
        "start": "1",
        "limit": "100",
        "convert": "USD",
        "sort": "market_cap",
    }
    assert request.headers["X-CMC_PRO_API_KEY"] == API_KEY
    assert API_KEY not in str(request.url)


async def test_empty_key_sends_no_key_header(make_http):
    recorder = Recorder(json_response(200, envelope("cmc_listings_2021-04-20.json")))

    await fetch(make_http, recorder, depth=100, key="")

    assert "X-CMC_PRO_API_KEY" not in recorder.requests[0].headers


async def test_pages_of_5000_until_depth(make_http):
    first = [listing(i) for i in range(1, 5001)]
    second = [listing(i) for i in range(5001, 7001)]
    recorder = Recorder(page(first, total_count=9000), page(second, total_count=9000))

    snapshot = await fetch(make_http, recorder, depth=7000)

    assert [recorder.params(i)["start"] for i in range(2)] == ["1", "5001"]
    assert [recorder.params(i)["limit"] for i in range(2)] == ["5000", "2000"]
    assert len(snapshot.quotes) == 7000


async def test_duplicates_across_pages_keep_the_first(make_http):
    first = [listing(i, rank=i) for i in range(1, 5001)]
    second = [listing(5000, "DUP", rank=5001), *(listing(i) for i in range(5002, 5011))]
    recorder = Recorder(page(first), page(second))

    snapshot = await fetch(make_http, recorder, depth=5010)

    ids = [q.cmc_id for q in snapshot.quotes]
    assert len(ids) == len(set(ids)) == 5009
    assert next(q for q in snapshot.quotes if q.cmc_id == 5000).cmc_rank == 5000


async def test_stops_when_provider_runs_out(make_http):
    data = envelope("cmc_listings_2021-08-31.json")["data"]
    recorder = Recorder(json_response(200, {"data": data}))  # no total_count to hold it to

    snapshot = await fetch(make_http, recorder, depth=300)

    assert len(recorder.requests) == 1
    assert len(snapshot.quotes) == 100


@pytest.mark.parametrize(
    ("answer", "depth", "error"),
    [
        pytest.param(  # 100 listings for a 300-listing request while the provider counts 6265
            json_response(200, envelope("cmc_listings_2021-08-31.json")),
            300,
            "partial page: 100 listings from #1",
            id="shorter-than-total-count",
        ),
        pytest.param(page([]), 100, "no listings at all", id="no-listings"),
    ],
)
async def test_an_incomplete_answer_is_rejected(make_http, answer, depth, error):
    with pytest.raises(BadResponseError, match=error):
        await fetch(make_http, Recorder(answer), depth=depth)


@pytest.mark.parametrize(("total_count", "depth"), [(50, 300), (5000, 8000)])
async def test_a_last_page_as_long_as_total_count_is_whole_and_the_end(
    make_http, total_count, depth
):
    recorder = Recorder(
        page([listing(i) for i in range(1, total_count + 1)], total_count=total_count)
    )

    snapshot = await fetch(make_http, recorder, depth=depth)

    assert len(recorder.requests) == 1
    assert len(snapshot.quotes) == snapshot.total_count == total_count


# (test id, HTTP status, error_code, error_message, the error it maps to)
CODED_ERRORS = [
    ("401-1001", 401, 1001, "This API Key is invalid.", AuthError),
    ("402-1004", 402, 1004, "Your API Key's subscription plan has expired.", AuthError),
    ("403-1006", 403, 1006, "Your plan doesn't support this endpoint.", AuthError),
    ("429-1008", 429, 1008, "You've exceeded your API Key's HTTP request rate.", RateLimitError),
    ("429-1010", 429, 1010, "You've exceeded your monthly credit limit.", RateLimitError),
    ("400", 400, 400, 'Invalid value for "limit"', ParameterError),
    ("500-json", 500, 500, "An internal server error occurred", ServerError),
]

ERROR_CASES = [
    pytest.param(
        json_response(401, load_fixture("cmc_error_1002_api-key-missing_2020-03-23.json")),
        AuthError,
        id="401-1002-recorded",
    ),
    pytest.param(
        json_response(200, load_fixture("cmc_error_1002_api-key-missing_2020-03-23.json")),
        AuthError,
        id="200-with-error-code-1002",
    ),
    *(
        pytest.param(json_response(status, error_body(code, message)), error, id=case)
        for case, status, code, message, error in CODED_ERRORS
    ),
    pytest.param(httpx.Response(502, text="<html>Bad Gateway</html>"), ServerError, id="502-html"),
    pytest.param(
        httpx.Response(200, text='{"status": {"error_code": 0'),
        BadResponseError,
        id="truncated-json",
    ),
    pytest.param(httpx.Response(200, text="<html>hi</html>"), BadResponseError, id="html-200"),
    pytest.param(
        httpx.Response(200, text='{"data": [{"id": 1, "quote": {"USD": {"price": NaN}}}]}'),
        BadResponseError,
        id="nan",
    ),
    pytest.param(json_response(200, {"status": {"error_code": 0}}), BadResponseError, id="no-data"),
    pytest.param(json_response(200, {"data": [{"symbol": "BTC"}]}), BadResponseError, id="no-id"),
    pytest.param(
        json_response(200, {"data": [{**listing(1), "quote": {"USD": {"price": "61137"}}}]}),
        BadResponseError,
        id="price-as-string",
    ),
    pytest.param(
        json_response(200, {"data": [{**listing(1), "last_updated": "yesterday", "quote": {}}]}),
        BadResponseError,
        id="bad-timestamp",
    ),
    pytest.param(
        json_response(404, {"status": {"error_code": 404, "error_message": "Not found"}}),
        BadResponseError,
        id="404",
    ),
]


@pytest.mark.parametrize("code", [1001, 1002])
async def test_auth_error_names_the_variable_to_fix(make_http, code):
    recorder = Recorder(json_response(401, error_body(code, "API key missing.")))

    with pytest.raises(AuthError, match="CMC_API_KEY") as caught:
        await fetch(make_http, recorder)

    assert caught.value.fatal
    assert not caught.value.retriable


async def test_provider_text_echoing_the_key_is_redacted(make_http):
    recorder = Recorder(json_response(401, error_body(1001, f"Key {API_KEY} is invalid.")))

    with pytest.raises(AuthError) as caught:
        await fetch(make_http, recorder)

    assert API_KEY not in str(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.parametrize(
    ("headers", "code", "retry_after"),
    [
        ({"Retry-After": "17"}, 1008, 17.0),
        ({}, 1008, 60.0),
        ({}, 1009, 86400.0),
        ({}, 1011, None),
    ],
)
async def test_rate_limit_carries_retry_after(make_http, headers, code, retry_after):
    recorder = Recorder(json_response(429, error_body(code, "rate limited"), headers=headers))

    with pytest.raises(RateLimitError) as caught:
        await fetch(make_http, recorder)

    assert caught.value.retry_after == retry_after
    assert caught.value.retriable


async def test_repr_shows_no_key(make_http):
    client = CoinMarketCapClient(make_http(Recorder(page([])), BASE_URL), API_KEY)

    assert API_KEY not in repr(client)


# --- quotes by id --------------------------------------------------------------------------


def quotes_body(items: list[dict[str, Any]]) -> httpx.Response:
    status = {"error_code": 0, "error_message": None, "credit_count": 1}
    return json_response(200, {"status": status, "data": {str(i["id"]): i for i in items}})


async def quotes(make_http, recorder: Recorder, ids, pacer=None):
    client = CoinMarketCapClient(make_http(recorder, BASE_URL), API_KEY, pacer=pacer)
    return await client.fetch_quotes(ids)


async def test_quotes_by_id_in_the_order_asked(make_http):
    recorder = Recorder(quotes_body([listing(1027, "ETH"), listing(1, "BTC")]))

    answer = await quotes(make_http, recorder, [1, 1027, 1])

    assert [q.cmc_id for q in answer] == [1, 1027]
    assert answer[0].price_usd == _BTC["quote"]["USD"]["price"]
    request = recorder.requests[0]
    assert request.url.path == QUOTES_PATH
    assert recorder.params() == {"id": "1,1027", "convert": "USD", "skip_invalid": "true"}
    assert request.headers["X-CMC_PRO_API_KEY"] == API_KEY
    assert API_KEY not in str(request.url)


async def test_ids_the_provider_left_out_are_simply_missing(make_http):
    recorder = Recorder(quotes_body([listing(1, "BTC")]))

    answer = await quotes(make_http, recorder, [1, 99999])

    assert [q.cmc_id for q in answer] == [1]


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (quotes_body([]), "none of the 2 ids"),
        (quotes_body([listing(5, "XXX")]), "was not asked for"),
        (
            json_response(200, {"status": {"error_code": 0}, "data": {"1": listing(1027)}}),
            "filed under",
        ),
        (json_response(200, {"status": {"error_code": 0}, "data": [listing(1)]}), "data object"),
        (json_response(200, {"data": {"1": {**listing(1), "quote": {"USD": []}}}}), "quote.USD"),
        (httpx.Response(200, text='{"data": {"1": {"id": 1'), "not JSON"),
    ],
)
async def test_bad_quotes_answers_are_rejected(make_http, answer, match):
    with pytest.raises(BadResponseError, match=match):
        await quotes(make_http, Recorder(answer), [1, 2])


async def test_quotes_errors_map_like_listings(make_http):
    recorder = Recorder(json_response(401, error_body(1001, "This API Key is invalid.")))

    with pytest.raises(AuthError, match=f"GET {QUOTES_PATH}.*CMC_API_KEY"):
        await quotes(make_http, recorder, [1])


# --- pacing, holds and deadlines -------------------------------------------------------------


class RecordingPacer(Pacer):
    """A pacer that records what each call costs and every hold (never waits)."""

    def __init__(self) -> None:
        super().__init__("coinmarketcap")
        self.costs: list[int] = []
        self.holds: list[float] = []

    async def acquire(self, credits: int = 1) -> None:
        self.costs.append(credits)

    def hold(self, seconds: float) -> None:
        self.holds.append(seconds)


async def test_every_call_passes_the_pacer_at_its_credit_price(make_http):
    first = [listing(i) for i in range(1, 5001)]
    second = [listing(i) for i in range(5001, 7001)]
    pacer = RecordingPacer()
    client = CoinMarketCapClient(
        make_http(Recorder(page(first, 9000), page(second, 9000)), BASE_URL), API_KEY, pacer=pacer
    )

    await client.fetch_listings(7000)

    assert pacer.costs == [25, 10]


async def test_quotes_go_in_batches_priced_per_100_ids(make_http):
    ids = list(range(1, 601))
    recorder = Recorder(
        quotes_body([listing(i) for i in ids[:500]]), quotes_body([listing(i) for i in ids[500:]])
    )
    pacer = RecordingPacer()

    answer = await quotes(make_http, recorder, ids, pacer=pacer)

    assert len(answer) == 600
    assert pacer.costs == [5, 1]
    assert [len(recorder.params(i)["id"].split(",")) for i in range(2)] == [500, 100]


async def test_a_rate_limit_with_a_known_reset_holds_the_pacer(make_http):
    pacer = RecordingPacer()
    recorder = Recorder(
        json_response(429, error_body(1008, "rate"), headers={"Retry-After": "17"}),
        json_response(429, error_body(1011, "IP limit")),
    )
    client = CoinMarketCapClient(make_http(recorder, BASE_URL), API_KEY, pacer=pacer)

    for _ in range(2):
        with pytest.raises(RateLimitError):
            await client.fetch_listings(100)

    assert pacer.holds == [17.0]  # 1011 has no documented reset: no hold


async def test_a_local_limit_sends_nothing(make_http):
    recorder = Recorder(page([listing(1)], 1))
    pacer = Pacer("coinmarketcap", [CreditLedger(100.0, 0, now=time.monotonic())], max_wait=1.0)
    client = CoinMarketCapClient(make_http(recorder, BASE_URL), API_KEY, pacer=pacer)
    await client.fetch_listings(1)

    with pytest.raises(
        LocalLimitError, match="monthly credit budget allows the next call in 100 s"
    ):
        await client.fetch_listings(1)

    assert len(recorder.requests) == 1


async def test_an_answer_that_trickles_in_is_cut_off_at_the_deadline():
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(1.0)
        return httpx.Response(200, json={"data": []})

    transport = httpx.MockTransport(slow)
    async with httpx.AsyncClient(base_url=BASE_URL, transport=transport, timeout=0.05) as http:
        client = CoinMarketCapClient(http, API_KEY)
        started = time.monotonic()

        with pytest.raises(UpstreamTimeout, match=r"did not complete within 0\.05 s") as caught:
            await client.fetch_listings(10)

    assert time.monotonic() - started < 0.5
    assert caught.value.retriable


# --- values the records cannot carry: that quote is dropped and counted ------------------


def _with(item: dict[str, Any], **usd: Any) -> dict[str, Any]:
    item["quote"]["USD"].update(usd)
    return item


OUT_OF_RANGE_LISTINGS = [
    pytest.param(
        _with(listing(7), last_updated="9999-12-31T23:00:00-05:00"),
        "timestamp_out_of_range",
        id="last-updated-past-9999-in-utc",
    ),
    pytest.param(_with(listing(7), price=10**400), "number_out_of_range", id="price-beyond-double"),
    pytest.param(_with(listing(7), volume_24h=-1.5), "negative_volume", id="negative-volume"),
    pytest.param(listing(2**63), "number_out_of_range", id="id-beyond-long"),
    pytest.param(listing(7, "S" * 33), "symbol_too_long", id="symbol-too-long"),
    pytest.param(listing(7, "=HYPERLINK(1)"), "symbol_invalid", id="formula-symbol"),
    pytest.param({**listing(7), "name": "N" * 10_000}, "name_too_long", id="name-too-long"),
]


@pytest.mark.parametrize(("bad", "reason"), OUT_OF_RANGE_LISTINGS)
async def test_a_listing_the_records_cannot_carry_is_dropped_and_counted(make_http, bad, reason):
    dropped: list[str] = []
    body = page([listing(1, "BTC"), bad, listing(3, "ETH")], total_count=3)
    client = CoinMarketCapClient(
        make_http(Recorder(body), BASE_URL), API_KEY, now=lambda: FIXED_NOW, on_drop=dropped.append
    )

    snapshot = await client.fetch_listings(3)

    assert [q.cmc_id for q in snapshot.quotes] == [1, 3]
    assert dropped == [reason]
    assert decode_as(PriceSnapshot, encode(snapshot)) == snapshot  # the rest publishes


async def test_a_dropped_listing_does_not_make_the_page_partial(make_http):
    items = [listing(i) for i in range(1, 301)]
    _with(items[50], last_updated="9999-12-31T23:00:00-05:00")
    recorder = Recorder(page(items, total_count=900))

    snapshot = await fetch(make_http, recorder, depth=300)

    assert len(snapshot.quotes) == 299
    assert len(recorder.requests) == 1


async def test_a_quote_the_records_cannot_carry_is_left_out_like_an_unknown_id(make_http):
    dropped: list[str] = []
    bad = _with(listing(1027, "ETH"), last_updated="9999-12-31T23:00:00-05:00")
    recorder = Recorder(quotes_body([listing(1, "BTC"), bad]))
    client = CoinMarketCapClient(make_http(recorder, BASE_URL), API_KEY, on_drop=dropped.append)

    answer = await client.fetch_quotes([1, 1027])

    assert [q.cmc_id for q in answer] == [1]
    assert dropped == ["timestamp_out_of_range"]


@pytest.mark.parametrize("price", ["NaN", "Infinity", "1e15"])
async def test_a_price_sent_as_a_string_rejects_the_answer(make_http, price):
    recorder = Recorder(page([_with(listing(1), price=price)], total_count=1))

    with pytest.raises(BadResponseError, match=r"quote\.USD\.price must be a number"):
        await fetch(make_http, recorder, depth=1)


# CoinMarketCap's documented example answer of /v1/key/info.
KEY_INFO = {
    "data": {
        "plan": {
            "credit_limit_monthly": 120000,
            "credit_limit_monthly_reset": "In 3 days, 19 hours, 56 minutes",
            "credit_limit_monthly_reset_timestamp": "2019-09-01T00:00:00.000Z",
            "rate_limit_minute": 60,
        },
        "usage": {
            "current_minute": {"requests_made": 1, "requests_left": 59},
            "current_day": {"credits_used": 1, "credits_left": 3999},
            "current_month": {"credits_used": 1, "credits_left": 119999},
        },
    },
    "status": {"timestamp": "2019-08-29T00:00:00.000Z", "error_code": 0, "error_message": ""},
}


async def test_key_info_parses_plan_and_usage(make_http):
    recorder = Recorder(json_response(200, KEY_INFO))
    client = CoinMarketCapClient(make_http(recorder, BASE_URL), API_KEY)
    info = await client.fetch_key_info()
    assert recorder.requests[0].url.path == "/v1/key/info"
    assert (info.credit_limit_monthly, info.rate_limit_minute) == (120000, 60)
    assert info.credit_limit_monthly_reset_at == datetime(2019, 9, 1, tzinfo=UTC)
    assert (info.requests_made_minute, info.requests_left_minute) == (1, 59)
    assert (info.credits_used_day, info.credits_left_day) == (1, 3999)
    assert (info.credits_used_month, info.credits_left_month) == (1, 119999)
    assert client.credits_used == 0  # no credit_count in the answer


async def test_key_info_without_a_plan_is_a_bad_response(make_http):
    body = copy.deepcopy(KEY_INFO)
    body["data"]["plan"]["credit_limit_monthly"] = "lots"
    client = CoinMarketCapClient(make_http(Recorder(json_response(200, body)), BASE_URL), API_KEY)
    with pytest.raises(BadResponseError, match="credit_limit_monthly must be an integer"):
        await client.fetch_key_info()


async def test_credits_used_sums_status_credit_count_of_each_page(make_http):
    first = {"status": {"error_code": 0, "credit_count": 25, "total_count": 6000}}
    first["data"] = [listing(i) for i in range(1, 5001)]
    last = {"status": {"error_code": 0, "credit_count": 5, "total_count": 6000}}
    last["data"] = [listing(i) for i in range(5001, 6001)]
    recorder = Recorder(json_response(200, first), json_response(200, last))
    client = CoinMarketCapClient(make_http(recorder, BASE_URL), API_KEY)
    await client.fetch_listings(6000)
    assert client.credits_used == 30


# --- market cap and 24 h change: optional; out of range is null, counted, the quote kept ----


async def test_market_cap_and_24h_change_are_read_from_the_quote(make_http):
    recorder = Recorder(json_response(200, envelope("cmc_listings_2024-09-17T1600Z_limit20.json")))

    snapshot = await fetch(make_http, recorder, depth=20)

    usd = _BTC["quote"]["USD"]
    assert snapshot.quotes[0].market_cap_usd == usd["market_cap"]
    assert snapshot.quotes[0].percent_change_24h == usd["percent_change_24h"]
    assert usd["market_cap"] > 0
    assert all(q.market_cap_usd is not None for q in snapshot.quotes)


async def test_missing_market_cap_and_change_stay_none(make_http):
    snapshot = await fetch(make_http, Recorder(page([listing(1)], total_count=1)), depth=1)

    assert (snapshot.quotes[0].market_cap_usd, snapshot.quotes[0].percent_change_24h) == (
        None,
        None,
    )


@pytest.mark.parametrize(
    ("usd", "reason"),
    [
        ({"market_cap": 10**400}, "number_out_of_range"),
        ({"market_cap": -5.0}, "negative_market_cap"),
        ({"percent_change_24h": 10**400}, "number_out_of_range"),
        ({"percent_change_24h": -100.5}, "number_out_of_range"),
    ],
)
async def test_an_out_of_range_market_value_is_null_and_counted_and_the_quote_kept(
    make_http, usd, reason
):
    nulled: list[str] = []
    dropped: list[str] = []
    good = _with(listing(1, "BTC"), market_cap=1.2e12, percent_change_24h=-3.25)
    bad = _with(listing(3, "ETH"), **{"market_cap": 4.0e11, "percent_change_24h": 1.5, **usd})
    client = CoinMarketCapClient(
        make_http(Recorder(page([good, bad], total_count=2)), BASE_URL),
        API_KEY,
        on_drop=dropped.append,
        on_null=nulled.append,
    )

    snapshot = await client.fetch_listings(2)

    assert [q.cmc_id for q in snapshot.quotes] == [1, 3]
    assert (snapshot.quotes[0].market_cap_usd, snapshot.quotes[0].percent_change_24h) == (
        1.2e12,
        -3.25,
    )
    kept = snapshot.quotes[1]
    field = "market_cap_usd" if "market_cap" in usd else "percent_change_24h"
    assert getattr(kept, field) is None
    assert kept.price_usd is not None
    assert (nulled, dropped) == ([reason], [])
    assert decode_as(PriceSnapshot, encode(snapshot)) == snapshot


async def test_an_out_of_range_market_value_in_a_quotes_answer_is_null_and_counted(make_http):
    nulled: list[str] = []
    recorder = Recorder(quotes_body([_with(listing(1, "BTC"), market_cap=-1.0)]))
    client = CoinMarketCapClient(make_http(recorder, BASE_URL), API_KEY, on_null=nulled.append)

    (quote,) = await client.fetch_quotes([1])

    assert quote.market_cap_usd is None
    assert nulled == ["negative_market_cap"]


async def test_a_market_cap_sent_as_a_string_rejects_the_answer(make_http):
    recorder = Recorder(page([_with(listing(1), market_cap="1e12")], total_count=1))

    with pytest.raises(BadResponseError, match=r"quote\.USD\.market_cap must be a number"):
        await fetch(make_http, recorder, depth=1)
