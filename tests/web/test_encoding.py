"""Bytes of the JSON and CSV bodies, HTTP dates, diagnostics."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from tests.web.factories import NOW, PRICED_AT, RANKED_AT, SAMPLE_ROWS, coin, view_of
from topcoins.settings import Settings
from topcoins.web.encoding import (
    CSV_HEADER,
    csv_body,
    csv_lines,
    csv_row,
    diagnostics_body,
    http_date,
    json_body,
    json_item,
)
from topcoins.web.freshness import Freshness, StalenessPolicy
from topcoins.web.view import TopListEntry, TopListView


def fresh(view: TopListView, settings: Settings | None = None) -> Freshness:
    """The freshness of ``view`` for an answer served at ``NOW``."""
    return StalenessPolicy(settings or Settings()).evaluate(view, {}, int(NOW.timestamp()) + 1)


def test_http_dates_are_imf_fixdate_in_gmt() -> None:
    moment = datetime(2024, 5, 1, 14, 0, 0, 999000, tzinfo=timezone(timedelta(hours=2)))
    assert http_date(moment) == "Wed, 01 May 2024 12:00:00 GMT"


def test_json_item_exact_bytes() -> None:
    entry = TopListEntry(
        3, "WIF", 'dogwifhat, "the hat" ✓', None, None, 12.5, "unmatched", RANKED_AT, None
    )
    assert (
        json_item(entry)
        == (
            '{"rank":3,"symbol":"WIF","name":"dogwifhat, \\"the hat\\" ✓","price_usd":null,'
            '"cmc_id":null,"volume_24h_usd":12.5,"market_cap_usd":null,'
            '"percent_change_24h":null,"price_fetched_at":null,'
            '"rank_fetched_at":"2024-05-01T12:00:00.000Z"}'
        ).encode()
    )
    priced = dataclasses.replace(entry, price_usd=2.5, cmc_id=7, price_fetched_at=PRICED_AT)
    assert b'"price_fetched_at":"2024-05-01T11:59:17.500Z"' in json_item(priced)
    known = dataclasses.replace(entry, market_cap_usd=1.5e12, percent_change_24h=-0.000025)
    assert b'"market_cap_usd":1500000000000.0,"percent_change_24h":-0.000025,' in json_item(known)


def test_json_body_count_is_capped_by_the_view(sample_view: TopListView) -> None:
    items = [json_item(entry) for entry in sample_view.entries]
    body = json.loads(json_body(sample_view, items, 100, fresh(sample_view)))
    assert body["meta"]["count"] == 5 and body["meta"]["limit"] == 100
    assert [item["rank"] for item in body["data"]] == [1, 2, 3, 4, 5]


def test_json_keeps_a_tiny_price_exact() -> None:
    view = view_of([coin("PEPE", "Pepe", 24478, 0.00001234)])
    body = json_body(view, [json_item(view.entries[0])], 1, fresh(view))
    assert b'"price_usd":0.00001234' in body
    assert json.loads(body)["data"][0]["price_usd"] == 0.00001234


def test_csv_rows_quote_commas_and_quotes() -> None:
    entry = TopListEntry(4, 'A,"B"', "x", None, None, None, "unmatched", RANKED_AT, None)
    assert csv_row(entry) == b'4,"A,""B""",\r\n'
    assert list(csv.reader(io.StringIO(csv_row(entry).decode()))) == [["4", 'A,"B"', ""]]


def test_csv_lines_quote_like_rfc_4180() -> None:
    data = csv_lines([("a", "b,c", 'say "hi"', "line\nbreak", "")])
    assert data == b'a,"b,c","say ""hi""","line\nbreak",\r\n'


def test_csv_body_exact(sample_view: TopListView) -> None:
    rows = [csv_row(entry) for entry in sample_view.entries]
    assert CSV_HEADER == b"Rank,Symbol,Price USD\r\n"
    assert csv_body(rows, 5) == (
        b"Rank,Symbol,Price USD\r\n"
        b"1,BTC,67012.34\r\n"
        b"2,ETH,3120.5\r\n"
        b"3,USDT,1.0002\r\n"
        b"4,WIF,\r\n"
        b"5,PEPE,0.00001234\r\n"
    )
    assert csv_body(rows, 1) == b"Rank,Symbol,Price USD\r\n1,BTC,67012.34\r\n"


def test_diagnostics_lists_every_asset_and_counts_rules(sample_view: TopListView) -> None:
    body = diagnostics_body(sample_view)
    assert b'"price_usd":0.00001234' in body
    report = json.loads(body)
    assert report["data"][0] == {
        "rank": 1,
        "symbol": "BTC",
        "name": "Bitcoin",
        "cmc_id": 1,
        "match_rule": "alias",
        "price_usd": 67012.34,
    }
    assert [item["symbol"] for item in report["data"]] == ["BTC", "ETH", "USDT", "WIF", "PEPE"]
    assert report["match_rules"] == {"symbol": 3, "alias": 1, "unmatched": 1}
    assert list(report["match_rules"]) == ["symbol", "alias", "unmatched"]
    assert report["meta"] == {
        "generation": 1,
        "ranking_updated_at": "2024-05-01T12:00:00.000Z",
        "prices_updated_at": "2024-05-01T11:59:17.500Z",
        "ranking_snapshot_id": "rank-0001",
        "pricing_snapshot_id": "price-0001",
        "total_ranked": len(SAMPLE_ROWS),
        "unmatched": 1,
        "without_price": 1,
    }


def test_diagnostics_of_an_empty_view_is_valid_json() -> None:
    report = json.loads(diagnostics_body(view_of([])))
    assert report["data"] == [] and report["match_rules"] == {}
    assert report["meta"]["total_ranked"] == 0


def test_json_meta_flags_stale_sources(sample_view: TopListView) -> None:
    items = [json_item(entry) for entry in sample_view.entries]
    freshness = fresh(sample_view, Settings(stale_after_seconds=60))
    meta = json.loads(json_body(sample_view, items, 1, freshness))["meta"]
    assert (meta["stale"], meta["stale_sources"]) == (True, ["prices"])
    assert (meta["ranking_age_seconds"], meta["prices_age_seconds"]) == (31, 73)


@pytest.mark.parametrize(
    "symbol", ['=HYPERLINK("http://x","y")', "+1", "-1", "@SUM(A1)", "\tX", "\rX"]
)
def test_a_formula_like_symbol_in_the_ranking_is_served_as_text_in_csv(symbol) -> None:
    view = view_of([coin(symbol, "Evil", 1, 2.5)])
    [row] = list(csv.reader(io.StringIO(csv_row(view.entries[0]).decode(), newline="")))
    assert row == ["1", "'" + symbol, "2.5"]
