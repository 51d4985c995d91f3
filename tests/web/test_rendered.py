"""Per-view answer cache: view-dependent parts once, finished answers once per freshness."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta

from tests.web.factories import NOW, SAMPLE_ROWS, coin, meta, view_of
from topcoins.settings import Settings
from topcoins.web.freshness import Freshness, StalenessPolicy
from topcoins.web.params import Format
from topcoins.web.rendered import RenderedView
from topcoins.web.view import TopListView


def freshness(view: TopListView, served_at: datetime = NOW, **settings: float) -> Freshness:
    policy = StalenessPolicy(Settings(**settings))  # type: ignore[arg-type]
    return policy.evaluate(view, {}, int(served_at.timestamp()) + 1)


def headers(rendered: RenderedView, fmt: Format, limit: int, at: Freshness) -> dict[bytes, bytes]:
    return dict(rendered.response(fmt, limit, at).headers)


def test_same_request_in_the_same_second_gets_the_same_prepared_answer(
    sample_view: TopListView,
) -> None:
    rendered = RenderedView(sample_view)
    now = freshness(sample_view)
    first = rendered.response(Format.JSON, 3, now)
    assert rendered.response(Format.JSON, 3, now) is first
    assert rendered.cached == 1


def test_a_new_second_rebuilds_the_meta_but_keeps_the_etag(sample_view: TopListView) -> None:
    rendered = RenderedView(sample_view)
    first = rendered.response(Format.JSON, 3, freshness(sample_view))
    later = rendered.response(Format.JSON, 3, freshness(sample_view, NOW + timedelta(seconds=5)))
    assert later is not first
    assert json.loads(first.body)["meta"]["ranking_age_seconds"] == 31
    assert json.loads(later.body)["meta"]["ranking_age_seconds"] == 36
    assert json.loads(later.body)["data"] == json.loads(first.body)["data"]
    assert later.etag == first.etag and first.etag.startswith(b'W/"')
    assert dict(later.headers)[b"x-data-age"] == b"78"
    assert rendered.cached == 1  # the data part was encoded once


def test_the_etag_changes_when_a_source_turns_stale(sample_view: TopListView) -> None:
    rendered = RenderedView(sample_view)
    fresh = rendered.response(Format.JSON, 3, freshness(sample_view))
    stale_prices = rendered.response(Format.JSON, 3, freshness(sample_view, stale_after_seconds=60))
    stale_both = rendered.response(Format.JSON, 3, freshness(sample_view, stale_after_seconds=30))
    assert fresh.etag.endswith(b'"') and b"stale" not in fresh.etag
    assert stale_prices.etag == fresh.etag[:-1] + b'-stale-prices"'
    assert stale_both.etag == fresh.etag[:-1] + b'-stale-ranking-stale-prices"'
    csv = rendered.response(Format.CSV, 3, freshness(sample_view, stale_after_seconds=60))
    assert csv.etag.startswith(b'"') and csv.etag.endswith(b'-stale-prices"')


def test_freshness_headers_on_answers_and_their_304_twins(sample_view: TopListView) -> None:
    rendered = RenderedView(sample_view)
    for fmt in Format:
        prepared = rendered.response(fmt, 2, freshness(sample_view))
        sent = dict(prepared.headers)
        # Last-Modified: the older of the two fetch times (the prices, 11:59:17.500)
        assert sent[b"last-modified"] == b"Wed, 01 May 2024 11:59:17 GMT"
        assert sent[b"x-data-age"] == b"73"
        assert sent[b"x-data-stale"] == b"false"
        assert sent[b"cache-control"] == b"no-cache" and sent[b"vary"] == b"Accept"
        assert dict(prepared.not_modified_headers) == {
            name: value
            for name, value in sent.items()
            if name not in (b"content-type", b"content-length")
        }
    stale = headers(rendered, Format.CSV, 2, freshness(sample_view, stale_after_seconds=60))
    assert stale[b"x-data-stale"] == b"true"


def test_formats_and_limits_get_their_own_bodies_and_etags(sample_view: TopListView) -> None:
    rendered = RenderedView(sample_view)
    now = freshness(sample_view)
    answers = [rendered.response(fmt, limit, now) for fmt in Format for limit in (1, 2, 5)]
    assert len({answer.etag for answer in answers}) == len(answers)
    # the view has 5 assets: JSON still differs by meta.limit, CSV is the same bytes
    assert (
        rendered.response(Format.JSON, 200, now).etag != rendered.response(Format.JSON, 5, now).etag
    )
    assert (
        rendered.response(Format.CSV, 200, now).etag == rendered.response(Format.CSV, 5, now).etag
    )
    csv = rendered.response(Format.CSV, 2, now)
    assert dict(csv.headers)[b"content-type"] == b"text/csv; charset=utf-8"
    assert csv.body.startswith(b"Rank,Symbol,Price USD\r\n")


def test_equal_data_gets_equal_etags_across_views(sample_view: TopListView) -> None:
    again = view_of(SAMPLE_ROWS)
    for fmt in Format:
        first = RenderedView(sample_view).response(fmt, 5, freshness(sample_view))
        second = RenderedView(again).response(fmt, 5, freshness(again))
        assert first.etag == second.etag
    changed = view_of([*SAMPLE_ROWS[:4], coin("PEPE", "Pepe", 24478, 0.00002)])
    assert (
        RenderedView(changed).response(Format.JSON, 5, freshness(changed)).etag
        != RenderedView(sample_view).response(Format.JSON, 5, freshness(sample_view)).etag
    )


def test_caches_are_bounded_lru(sample_view: TopListView) -> None:
    rendered = RenderedView(sample_view, max_entries=3)
    now = freshness(sample_view)
    one = rendered.response(Format.JSON, 1, now)
    rendered.response(Format.JSON, 2, now)
    rendered.response(Format.JSON, 3, now)
    assert rendered.response(Format.JSON, 1, now) is one
    rendered.response(Format.JSON, 4, now)
    assert rendered.cached == 3
    assert rendered.response(Format.JSON, 4, now).body.count(b'"rank"') == 4
    assert rendered.cached == 3


def test_diagnostics_body_is_encoded_once(sample_view: TopListView) -> None:
    rendered = RenderedView(sample_view)
    assert rendered.diagnostics_body() is rendered.diagnostics_body()


def test_last_modified_is_the_ranking_when_there_are_no_prices() -> None:
    no_prices = dataclasses.replace(meta(["WIF"]), prices_fetched_at=None, pricing_snapshot_id=None)
    wif = dataclasses.replace(coin("WIF", "dogwifhat", None, None), pricing_snapshot_id=None)
    view = view_of([wif], no_prices)  # a generation without prices: rows and meta alike
    assert view.prices_updated_at is None
    rendered = RenderedView(view)
    assert rendered.last_modified == "Wed, 01 May 2024 12:00:00 GMT"
    sent = headers(rendered, Format.JSON, 1, freshness(view))
    assert (sent[b"x-data-age"], sent[b"x-data-stale"]) == (b"31", b"true")
