"""CryptoCompareClient against recorded CryptoCompare responses (no network)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import load_fixture
from tests.producers.conftest import API_KEY, Recorder, json_response
from topcoins.producers.cryptocompare import TOPLIST_PATH, CryptoCompareClient
from topcoins.producers.errors import (
    AuthError,
    BadResponseError,
    LocalLimitError,
    ParameterError,
    RateLimitError,
    ServerError,
)
from topcoins.producers.ratelimit import Pacer, SlidingWindowLimiter, Window
from topcoins.schemas.codec import decode_as, encode
from topcoins.schemas.records import RankingSnapshot

BASE_URL = "https://min-api.cryptocompare.test"
FIXED_NOW = datetime(2022, 9, 21, 19, 16, 0, 123456, tzinfo=UTC)
TOTALVOL_2020 = "cc_totalvolfull_2020-05-04_page0_limit10.json"
MKTCAP_2022 = "cc_mktcapfull_2022-09-21_page0.json"


def body_with(items: list[dict[str, Any]], count: int | None = None) -> dict[str, Any]:
    """A success body shaped like the 2022 capture, holding ``items``."""
    body = {key: value for key, value in load_fixture(MKTCAP_2022).items() if key != "Data"}
    body["Data"] = items
    if count is None:
        body.pop("MetaData")
    else:
        body["MetaData"] = {"Count": count}
    return body


def items_2022() -> list[dict[str, Any]]:
    return load_fixture(MKTCAP_2022)["Data"]


def items_2020() -> list[dict[str, Any]]:
    return load_fixture(TOTALVOL_2020)["Data"]


async def fetch(make_http, recorder: Recorder, depth: int = 100, key: str = API_KEY):
    client = CryptoCompareClient(make_http(recorder, BASE_URL), key, now=lambda: FIXED_NOW)
    return client, await client.fetch_ranking(depth)


async def test_totalvolfull_page_parses_in_provider_order(make_http):
    recorder = Recorder(json_response(200, load_fixture(TOTALVOL_2020)))

    _, snapshot = await fetch(make_http, recorder, depth=10)

    assert [a.position for a in snapshot.assets] == list(range(1, 11))
    assert [a.symbol for a in snapshot.assets][:3] == ["BTC", "ETH", "EOS"]
    btc = snapshot.assets[0]
    assert (btc.symbol, btc.name, btc.cc_id) == ("BTC", "Bitcoin", "1182")
    assert btc.volume_24h_usd == 5736224004.504435
    # The provider's order can disagree with its own values (BSV listed before XRP): kept.
    assert [a.symbol for a in snapshot.assets][6:8] == ["BSV", "XRP"]
    assert snapshot.assets[6].volume_24h_usd < snapshot.assets[7].volume_24h_usd
    assert snapshot.provider_total is None  # this capture has no MetaData
    assert snapshot.depth == 10
    assert snapshot.fetched_at == datetime(2022, 9, 21, 19, 16, 0, 123000, tzinfo=UTC)
    assert len(snapshot.snapshot_id) == 32


async def test_request_carries_key_in_header_never_in_url(make_http):
    recorder = Recorder(json_response(200, load_fixture(TOTALVOL_2020)))

    await fetch(make_http, recorder, depth=10)

    request = recorder.requests[0]
    assert request.url.path == TOPLIST_PATH
    assert recorder.params() == {"tsym": "USD", "limit": "10", "page": "0"}
    assert request.headers["authorization"] == f"Apikey {API_KEY}"
    assert API_KEY not in str(request.url)


async def test_empty_key_sends_no_authorization_header(make_http):
    recorder = Recorder(json_response(200, load_fixture(TOTALVOL_2020)))

    await fetch(make_http, recorder, depth=10, key="")

    assert "authorization" not in recorder.requests[0].headers


async def test_items_without_raw_have_no_volume(make_http):
    recorder = Recorder(json_response(200, load_fixture(MKTCAP_2022)))

    _, snapshot = await fetch(make_http, recorder, depth=100)

    assert len(snapshot.assets) == 100
    assert snapshot.provider_total == 741
    without = {a.symbol: a for a in snapshot.assets if a.volume_24h_usd is None}
    assert set(without) == {"CUSDC", "EVMOS"}
    assert without["CUSDC"].cc_id == "933138"
    assert without["EVMOS"].name == "Evmos"


async def test_pages_continue_positions_and_keep_whole_pages(make_http):
    recorder = Recorder(
        json_response(200, body_with(items_2022(), count=741)),
        json_response(200, body_with(items_2020() * 10, count=741)),  # 100 items, 10 distinct
        json_response(200, body_with([], count=741)),
    )

    _, snapshot = await fetch(make_http, recorder, depth=150)

    # Page 1 holds only 10 distinct assets, so 150 distinct need a further page (empty here).
    assert [recorder.params(i) for i in range(3)] == [
        {"tsym": "USD", "limit": "100", "page": str(page)} for page in range(3)
    ]
    assert snapshot.depth == 150
    assert len(snapshot.assets) == 200  # as answered; the join dedupes and cuts to depth
    assert [a.position for a in snapshot.assets] == list(range(1, 201))
    assert snapshot.assets[100].symbol == "BTC"
    assert snapshot.assets[100].volume_24h_usd == 5736224004.504435


async def test_paging_stops_once_depth_distinct_assets_are_in(make_http):
    recorder = Recorder(json_response(200, body_with(items_2022(), count=741)))

    _, snapshot = await fetch(make_http, recorder, depth=60)

    # One call: the (recorded, 100-item) page already holds 60 distinct assets.
    assert recorder.params(0) == {"tsym": "USD", "limit": "60", "page": "0"}
    assert len(recorder.requests) == 1
    assert len(snapshot.assets) == 100


def two_pages_then_an_empty_one() -> Recorder:
    """The 2022 page (100 assets), the 2020 one (10, BTC again), then an empty page."""
    return Recorder(
        json_response(200, body_with(items_2022())),
        json_response(200, body_with(items_2020())),
        json_response(200, body_with([])),
    )


async def test_duplicates_are_published_as_the_provider_said(make_http):
    recorder = two_pages_then_an_empty_one()

    _, snapshot = await fetch(make_http, recorder, depth=200)

    symbols = [a.symbol for a in snapshot.assets]
    assert symbols.count("BTC") == 2
    assert [a.position for a in snapshot.assets if a.symbol == "BTC"] == [1, 101]


async def test_stops_on_an_empty_page(make_http):
    recorder = two_pages_then_an_empty_one()

    _, snapshot = await fetch(make_http, recorder, depth=500)

    assert len(recorder.requests) == 3
    assert len(snapshot.assets) == 110


async def test_stops_when_metadata_count_is_reached(make_http):
    recorder = Recorder(
        json_response(200, body_with(items_2022(), count=110)),
        json_response(200, body_with(items_2020(), count=110)),
    )

    _, snapshot = await fetch(make_http, recorder, depth=500)

    assert len(recorder.requests) == 2
    assert snapshot.provider_total == 110
    assert len(snapshot.assets) == 110


async def test_an_invalid_second_page_invalidates_the_snapshot(make_http):
    broken = copy.deepcopy(items_2020())
    del broken[3]["CoinInfo"]
    recorder = Recorder(
        json_response(200, body_with(items_2022())),
        json_response(200, body_with(broken)),
    )

    with pytest.raises(BadResponseError, match="page 1: item #3"):
        await fetch(make_http, recorder, depth=200)


def _broken(change) -> dict[str, Any]:
    items = copy.deepcopy(items_2020())
    change(items[0])
    return body_with(items)


# (recorded error answer, the error it maps to): CryptoCompare sends them with HTTP 200
RECORDED_ERRORS = [
    ("cc_error_ratelimit_2020-08-18.json", RateLimitError),
    ("cc_error_ratelimit_2024-07-29_http200.json", RateLimitError),
    ("cc_error_ratelimit_chainlink-test.json", RateLimitError),
    ("cc_error_ratelimit_cryptocompare-api-guides_2019.json", RateLimitError),
    ("cc_error_auth-required_2026-01-02.json", AuthError),
    ("cc_error_tsym-required_mktcapfull_2026-01-02.json", ParameterError),
    ("cc_error_tsyms-invalid_2017-11-27.json", ParameterError),  # the old shape
    ("cc_error_path-does-not-exist_totalvolumefull-typo_2026-01-02.json", BadResponseError),
]

ERROR_CASES = [
    *(
        pytest.param(json_response(200, load_fixture(name)), error, id=name)
        for name, error in RECORDED_ERRORS
    ),
    pytest.param(httpx.Response(429, text="Too Many Requests"), RateLimitError, id="http-429"),
    pytest.param(httpx.Response(401, text="Unauthorized"), AuthError, id="http-401"),
    pytest.param(httpx.Response(500, text="oops"), ServerError, id="http-500"),
    pytest.param(httpx.Response(503, json={"Response": "Error"}), ServerError, id="http-503"),
    pytest.param(httpx.Response(404, text="not here"), BadResponseError, id="http-404"),
    pytest.param(httpx.Response(200, text='{"Data": ['), BadResponseError, id="truncated-json"),
    pytest.param(json_response(200, {"Message": "Success"}), BadResponseError, id="no-data"),
    pytest.param(json_response(200, {"Data": {}}), BadResponseError, id="data-not-a-list"),
    pytest.param(
        json_response(200, _broken(lambda item: item["CoinInfo"].pop("Name"))),
        BadResponseError,
        id="no-name",
    ),
    pytest.param(
        json_response(200, _broken(lambda item: item["CoinInfo"].update(Name=""))),
        BadResponseError,
        id="empty-name",
    ),
    pytest.param(
        json_response(200, _broken(lambda item: item["RAW"]["USD"].update(TOTALVOLUME24HTO="1"))),
        BadResponseError,
        id="volume-as-string",
    ),
    pytest.param(
        json_response(200, body_with(items_2020(), count="many")),
        BadResponseError,
        id="count-not-int",
    ),
]


async def test_auth_error_names_the_variable_to_fix(make_http):
    recorder = Recorder(json_response(200, load_fixture("cc_error_auth-required_2026-01-02.json")))

    with pytest.raises(AuthError, match="CRYPTOCOMPARE_API_KEY"):
        await fetch(make_http, recorder)


async def test_parameter_error_names_the_parameter(make_http):
    body = load_fixture("cc_error_tsym-required_mktcapfull_2026-01-02.json")
    recorder = Recorder(json_response(200, body))

    with pytest.raises(ParameterError, match="parameter tsym"):
        await fetch(make_http, recorder)


@pytest.mark.parametrize(
    ("name", "exceeded", "retry_after"),
    [
        ("cc_error_ratelimit_2020-08-18.json", ("month",), 30 * 86400.0),
        ("cc_error_ratelimit_2024-07-29_http200.json", ("day",), 86400.0),
        ("cc_error_ratelimit_chainlink-test.json", ("day",), 86400.0),
        ("cc_error_ratelimit_cryptocompare-api-guides_2019.json", ("second",), 1.0),
    ],
)
async def test_rate_limit_block_is_exposed(make_http, name, exceeded, retry_after):
    body = load_fixture(name)
    recorder = Recorder(json_response(200, body))
    client = CryptoCompareClient(make_http(recorder, BASE_URL), API_KEY)

    with pytest.raises(RateLimitError) as caught:
        await client.fetch_ranking(10)

    usage = caught.value.usage
    assert usage is not None
    assert dict(usage.calls_made) == body["RateLimit"]["calls_made"]
    assert dict(usage.max_calls) == body["RateLimit"]["max_calls"]
    assert usage.exceeded == exceeded
    assert caught.value.retry_after == retry_after
    assert client.rate_limit == usage


async def test_retry_after_header_wins_over_the_rate_limit_block(make_http):
    body = load_fixture("cc_error_ratelimit_2024-07-29_http200.json")
    recorder = Recorder(json_response(429, body, headers={"Retry-After": "5"}))

    with pytest.raises(RateLimitError) as caught:
        await fetch(make_http, recorder)

    assert caught.value.retry_after == 5.0


async def test_empty_rate_limit_block_is_ignored(make_http):
    recorder = Recorder(json_response(200, load_fixture(TOTALVOL_2020)))

    client, _ = await fetch(make_http, recorder, depth=10)

    assert client.rate_limit is None


async def test_an_answer_without_any_asset_is_rejected(make_http):
    recorder = Recorder(json_response(200, body_with([], count=741)))

    with pytest.raises(BadResponseError, match="no assets at all"):
        await fetch(make_http, recorder, depth=100)


class CountingPacer(Pacer):
    def __init__(self, limiter: SlidingWindowLimiter) -> None:
        super().__init__("cryptocompare", [limiter], monotonic=lambda: 0.0)
        self.acquired = 0

    async def acquire(self, credits: int = 1) -> None:
        self.acquired += 1
        await super().acquire(credits)


async def test_every_page_passes_the_pacer(make_http):
    pacer = CountingPacer(SlidingWindowLimiter([Window("day", 86400, 7500)]))
    recorder = Recorder(
        json_response(200, body_with(items_2022(), count=741)),
        json_response(200, body_with(items_2020() * 10, count=741)),
        json_response(200, body_with([], count=741)),
    )
    client = CryptoCompareClient(make_http(recorder, BASE_URL), API_KEY, pacer=pacer)

    await client.fetch_ranking(150)

    assert pacer.acquired == len(recorder.requests) == 3


async def test_the_rate_limit_block_reaches_the_limiter(make_http):
    limiter = SlidingWindowLimiter(
        [Window("second", 1, 20), Window("minute", 60, 300), Window("day", 86400, 7500)]
    )
    pacer = Pacer("cryptocompare", [limiter], monotonic=lambda: 0.0, max_wait=60.0)
    body = load_fixture("cc_error_ratelimit_2024-07-29_http200.json")
    recorder = Recorder(json_response(200, body))
    client = CryptoCompareClient(make_http(recorder, BASE_URL), API_KEY, pacer=pacer)

    with pytest.raises(RateLimitError):
        await client.fetch_ranking(10)
    with pytest.raises(LocalLimitError, match="day limit") as caught:
        await client.fetch_ranking(10)  # the provider said the day is used up: no call

    assert len(recorder.requests) == 1
    assert caught.value.retry_after == 86400.0
    assert limiter.calls("day", 0.0) == body["RateLimit"]["calls_made"]["day"]


async def test_rate_limit_reads_calls_made_and_left(make_http):
    body = {
        "Response": "Success",
        "Message": "",
        "HasWarning": False,
        "Type": 100,
        "RateLimit": {},
        "Data": {
            "calls_made": {"second": 1, "minute": 2, "hour": 3, "day": 4, "month": 5},
            "calls_left": {"second": 19, "minute": 298, "hour": 2997, "day": 7496, "month": 1},
        },
    }
    recorder = Recorder(json_response(200, body))
    client = CryptoCompareClient(make_http(recorder, BASE_URL), API_KEY)
    usage = await client.fetch_rate_limit()
    assert recorder.requests[0].url.path == "/stats/rate/limit"
    assert usage.calls_made["day"] == 4
    assert usage.max_calls == {"second": 20, "minute": 300, "hour": 3000, "day": 7500, "month": 6}


async def test_rate_limit_without_counts_is_a_bad_response(make_http):
    body = {"Response": "Success", "Type": 100, "Data": {}}
    client = CryptoCompareClient(make_http(Recorder(json_response(200, body)), BASE_URL), API_KEY)
    with pytest.raises(BadResponseError, match="calls_made"):
        await client.fetch_rate_limit()


# --- values the records cannot carry: that asset is dropped and counted ------------------


def _symbol(value: str):
    return lambda item: item["CoinInfo"].update(Name=value)


OUT_OF_RANGE_ASSETS = [
    pytest.param(_symbol("=HYPERLINK(1)"), "symbol_invalid", id="formula-symbol"),
    pytest.param(_symbol("@SUM(A1)"), "symbol_invalid", id="at-symbol"),
    pytest.param(_symbol("X" * 33), "symbol_too_long", id="symbol-too-long"),
    pytest.param(
        lambda item: item["CoinInfo"].update(FullName="N" * 100_000),
        "name_too_long",
        id="name-too-long",
    ),
    pytest.param(
        lambda item: item["RAW"]["USD"].update(TOTALVOLUME24HTO=-3.0),
        "negative_volume",
        id="negative-volume",
    ),
    pytest.param(
        lambda item: item["RAW"]["USD"].update(TOTALVOLUME24HTO=10**400),
        "number_out_of_range",
        id="volume-beyond-double",
    ),
]


@pytest.mark.parametrize(("change", "reason"), OUT_OF_RANGE_ASSETS)
async def test_an_asset_the_records_cannot_carry_is_dropped_and_counted(make_http, change, reason):
    items = copy.deepcopy(items_2020())
    change(items[1])
    dropped: list[str] = []
    recorder = Recorder(json_response(200, body_with(items, count=len(items))))
    client = CryptoCompareClient(
        make_http(recorder, BASE_URL), API_KEY, now=lambda: FIXED_NOW, on_drop=dropped.append
    )

    snapshot = await client.fetch_ranking(100)

    assert dropped == [reason]
    assert len(snapshot.assets) == len(items) - 1
    assert [a.position for a in snapshot.assets] == [1, *range(3, len(items) + 1)]
    assert all(len(a.symbol) <= 32 and len(a.name) <= 128 for a in snapshot.assets)
    assert decode_as(RankingSnapshot, encode(snapshot)) == snapshot


async def test_a_page_whose_assets_were_all_dropped_does_not_end_the_paging(make_http):
    first = copy.deepcopy(items_2022())
    for item in first:
        item["CoinInfo"]["Name"] = "=" + item["CoinInfo"]["Name"]
    recorder = Recorder(
        json_response(200, body_with(first, count=200)),
        json_response(200, body_with(items_2020(), count=200)),
        json_response(200, body_with([], count=200)),
    )

    _, snapshot = await fetch(make_http, recorder, depth=200)

    assert len(recorder.requests) == 3
    start = len(first) + 1
    assert [a.position for a in snapshot.assets] == list(range(start, start + len(items_2020())))
