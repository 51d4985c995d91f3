"""Per-view answer cache: encoded once, bounded, keyed by format and limit."""

from __future__ import annotations

from topcoins.web.params import Format
from topcoins.web.rendered import RenderedView
from topcoins.web.view import TopListView


def test_same_request_gets_the_same_prepared_answer(sample_view: TopListView) -> None:
    rendered = RenderedView(sample_view)
    first = rendered.response(Format.JSON, 3)
    assert rendered.response(Format.JSON, 3) is first
    assert rendered.cached == 1


def test_formats_and_limits_get_their_own_bodies_and_etags(sample_view: TopListView) -> None:
    rendered = RenderedView(sample_view)
    answers = [rendered.response(fmt, limit) for fmt in Format for limit in (1, 2, 5)]
    assert len({answer.etag for answer in answers}) == len(answers)
    # the view has 5 assets: JSON still differs by meta.limit, CSV is the same bytes
    assert rendered.response(Format.JSON, 200).etag != rendered.response(Format.JSON, 5).etag
    assert rendered.response(Format.CSV, 200).etag == rendered.response(Format.CSV, 5).etag
    csv = rendered.response(Format.CSV, 2)
    assert dict(csv.headers)[b"content-type"] == b"text/csv; charset=utf-8"
    assert csv.body.startswith(b"Rank,Symbol,Price USD\r\n")


def test_equal_bytes_get_equal_etags_across_views(sample_view: TopListView) -> None:
    again = RenderedView(sample_view).response(Format.CSV, 5)
    assert RenderedView(sample_view).response(Format.CSV, 5).etag == again.etag


def test_cache_is_bounded_lru(sample_view: TopListView) -> None:
    rendered = RenderedView(sample_view, max_entries=3)
    one = rendered.response(Format.JSON, 1)
    rendered.response(Format.JSON, 2)
    rendered.response(Format.JSON, 3)
    assert rendered.response(Format.JSON, 1) is one  # refreshes 1; 2 is now the oldest
    rendered.response(Format.JSON, 4)
    assert rendered.cached == 3
    assert rendered.response(Format.JSON, 1) is one
    assert rendered.cached == 3


def test_diagnostics_body_is_encoded_once(sample_view: TopListView) -> None:
    rendered = RenderedView(sample_view)
    assert rendered.diagnostics_body() is rendered.diagnostics_body()
