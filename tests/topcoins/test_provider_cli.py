"""``topcoins cmc …`` / ``topcoins cc …`` against recorded answers and the in-process emulator."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest

from tests.conftest import load_fixture
from topcoins.cli import _parser, main
from topcoins.emulator import EmulatorConfig, create_app
from topcoins.provider_cli import EXIT_AUTH, EXIT_FAILED, EXIT_OK, run

KEY = "sk-live-9f8e7d6c5b4a"  # never printed
CMC_KEY, CC_KEY = "emu-cmc-key", "emu-cc-key"
ENV = {
    "CMC_BASE_URL": "https://pro-api.coinmarketcap.test",
    "CRYPTOCOMPARE_BASE_URL": "https://min-api.cryptocompare.test",
    "CMC_API_KEY": KEY,
    "CRYPTOCOMPARE_API_KEY": KEY,
}


def call(argv, transport, env=ENV):
    """Parse ``topcoins <argv>`` and run it; return (exit status, stdout, stderr)."""
    args = _parser().parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    code = run(args, env, transport=transport, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def recorded(*bodies, status=200, seen=None):
    """A transport answering each request with the next body (the last one repeats)."""
    answers = list(bodies)

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        body = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(body, httpx.Response):
            return body
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handler)


def emulator_transport(**config):
    app = create_app(EmulatorConfig(tick_seconds=0, **config))
    return httpx.ASGITransport(app=app)


def test_listings_from_a_recorded_answer_as_json():
    body = load_fixture("cmc_listings_2024-09-17T1600Z_limit20.json")
    seen: list[httpx.Request] = []
    code, out, err = call(
        ["cmc", "listings", "--limit", "20", "--format", "json"], recorded(body, seen=seen)
    )
    assert code == EXIT_OK
    rows = json.loads(out)
    assert [row["id"] for row in rows] == [item["id"] for item in body["data"]]
    btc = rows[0]
    assert (btc["symbol"], btc["price_usd"]) == ("BTC", body["data"][0]["quote"]["USD"]["price"])
    assert seen[0].url.params["limit"] == "20"
    assert seen[0].headers["X-CMC_PRO_API_KEY"] == KEY  # the key travels in the header only
    assert KEY not in str(seen[0].url)
    assert err.splitlines() == [
        "coinmarketcap: 1 call, 1 credit used (status.credit_count); 1 credit charged to "
        "the 10000-credit monthly budget"
    ]


def test_listings_filters_by_symbols_and_ids_as_csv():
    body = load_fixture("cmc_listings_2024-09-17T1600Z_limit20.json")
    code, out, _ = call(
        ["cmc", "listings", "--limit", "20", "--format", "csv", "--symbols", "eth,BTC,SOL"],
        recorded(body),
    )
    assert code == EXIT_OK
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == [
        "rank",
        "id",
        "symbol",
        "name",
        "price_usd",
        "volume_24h_usd",
        "last_updated",
    ]
    assert [row[2] for row in rows[1:]] == ["BTC", "ETH", "SOL"]
    _, out, _ = call(["cmc", "listings", "--limit", "20", "--ids", "1027"], recorded(body))
    assert [line.split()[2] for line in out.splitlines()] == ["symbol", "ETH"]


def test_a_missing_key_answer_exits_2_with_one_line():
    body = load_fixture("cmc_error_1002_api-key-missing_2020-03-23.json")
    code, out, err = call(["cmc", "listings"], recorded(body, status=401))
    assert (code, out) == (EXIT_AUTH, "")
    assert len(err.splitlines()) == 1
    assert "refused the API key" in err and "error_code 1002" in err


def test_no_key_at_all_exits_2_without_calling():
    seen: list[httpx.Request] = []
    env = {**ENV, "CMC_API_KEY": ""}
    code, out, err = call(["cmc", "key-info"], recorded({}, seen=seen), env)
    assert (code, out, seen) == (EXIT_AUTH, "", [])
    assert err.strip().endswith("pass --api-key or set CMC_API_KEY")


def test_a_key_echoed_by_the_provider_is_redacted_on_one_line():
    message = f"This API Key is invalid:\n{KEY}"
    echo = {"status": {"error_code": 1001, "error_message": message}}
    code, out, err = call(["cmc", "key-info", "--api-key", KEY], recorded(echo, status=401))
    assert code == EXIT_AUTH
    assert KEY not in out + err
    assert "invalid: ***" in err and len(err.splitlines()) == 1


def test_retries_a_server_error_then_succeeds():
    body = load_fixture("cmc_listings_2024-09-17T1600Z_limit20.json")
    failing = httpx.Response(503, text="Service Unavailable")
    seen: list[httpx.Request] = []
    env = {**ENV, "PRODUCER_RETRY_ATTEMPTS": "2"}
    code, _, err = call(
        ["cmc", "listings", "--limit", "20"], recorded(failing, body, seen=seen), env
    )
    assert (code, len(seen)) == (EXIT_OK, 2)
    assert "HTTP 503" in err and "retry 1 in" in err
    assert "coinmarketcap: 2 calls, 1 credit used" in err  # the failed call was charged 1


def test_gives_up_after_the_retries_with_exit_1():
    rate_limited = load_fixture("cc_error_ratelimit_2024-07-29_http200.json")
    env = {**ENV, "PRODUCER_RETRY_ATTEMPTS": "1"}
    code, out, err = call(["cc", "toplist"], recorded(rate_limited), env)
    assert (code, out) == (EXIT_FAILED, "")
    assert err.splitlines() == [
        "topcoins cc toplist: cryptocompare: GET /data/top/totalvolfull is rate limited "
        "(HTTP 200, Type 99: You are over your rate limit please upgrade your account!; "
        "exceeded windows: day)"
    ]


def test_toplist_from_a_recorded_answer():
    body = load_fixture("cc_totalvolfull_2020-05-04_page0_limit10.json")
    seen: list[httpx.Request] = []
    code, out, err = call(["cc", "toplist", "--limit", "3"], recorded(body, seen=seen))
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0].split() == ["position", "symbol", "name", "cc_id", "volume_24h_usd"]
    names = [item["CoinInfo"]["Name"] for item in body["Data"][:3]]
    assert [line.split()[1] for line in lines[1:]] == names
    assert seen[0].headers["authorization"] == f"Apikey {KEY}"
    assert err.splitlines()[-1] == "cryptocompare: 1 call"


def test_emulator_key_info_reports_the_credits_listings_used():
    transport = emulator_transport(cmc_api_key=CMC_KEY)
    env = {**ENV, "CMC_API_KEY": CMC_KEY}
    code, _, err = call(["cmc", "listings", "--limit", "500"], transport, env)
    assert code == EXIT_OK
    assert "3 credits used (status.credit_count)" in err  # 500 listings: 1 credit per 200
    code, out, err = call(["cmc", "key-info", "--format", "json"], transport, env)
    assert code == EXIT_OK
    month = next(row for row in json.loads(out) if row["period"] == "month")
    assert (month["used"], month["left"], month["limit"]) == (3, 9_997, 10_000)
    assert "0 credits used" in err
    assert "coinmarketcap plan: 10000 credits a month" in err


def test_emulator_quotes_by_ids():
    transport = emulator_transport(cmc_api_key=CMC_KEY)
    code, out, _ = call(
        ["cmc", "quotes", "--ids", "1027,1", "--api-key", CMC_KEY, "--format", "json"], transport
    )
    assert code == EXIT_OK
    assert [(row["id"], row["symbol"]) for row in json.loads(out)] == [(1027, "ETH"), (1, "BTC")]


def test_emulator_rate_limit_counts_the_toplist_call():
    transport = emulator_transport(cryptocompare_api_key=CC_KEY)
    env = {**ENV, "CRYPTOCOMPARE_API_KEY": CC_KEY}
    assert call(["cc", "toplist", "--limit", "5"], transport, env)[0] == EXIT_OK
    code, out, _ = call(["cc", "rate-limit", "--format", "json"], transport, env)
    assert code == EXIT_OK
    rows = {row["window"]: row for row in json.loads(out)}
    assert (rows["day"]["calls_made"], rows["day"]["max_calls"]) == (2, 7_500)
    assert rows["day"]["calls_left"] == 7_498


@pytest.mark.parametrize(
    "argv",
    [
        ["cmc", "listings"],
        ["cmc", "quotes", "--ids", "1"],
        ["cmc", "key-info"],
        ["cc", "toplist"],
        ["cc", "rate-limit"],
    ],
)
def test_emulator_refuses_a_bad_key_with_exit_2(argv):
    transport = emulator_transport(cmc_api_key=CMC_KEY, cryptocompare_api_key=CC_KEY)
    code, out, err = call([*argv, "--api-key", KEY], transport)
    assert (code, out) == (EXIT_AUTH, "")
    assert len(err.splitlines()) == 1
    assert "refused the API key" in err
    assert KEY not in err


def test_a_key_with_a_control_character_is_a_bad_setting(monkeypatch, capsys):
    monkeypatch.delenv("CMC_API_KEY", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["cmc", "key-info", "--api-key", "abc\ndef"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "abc" not in err


def test_quotes_need_ids(capsys):
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(["cmc", "quotes"])
    assert exit_.value.code == 2
    assert "--ids" in capsys.readouterr().err
