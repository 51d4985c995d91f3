"""Event framing and event ids of GET /stream."""

from __future__ import annotations

import dataclasses

from tests.web.factories import NOW, SAMPLE_ROWS, view_of
from topcoins.settings import Settings
from topcoins.web.freshness import StalenessPolicy
from topcoins.web.sse import HEARTBEAT, event_id, generation_id, sse_event


def test_the_generation_id_names_the_snapshot_pair_not_the_process_counter() -> None:
    view = view_of(SAMPLE_ROWS)
    same_pair_elsewhere = dataclasses.replace(view, generation=view.generation + 41)
    new_prices = dataclasses.replace(view, pricing_snapshot_id="price-0002")
    new_ranking = dataclasses.replace(view, ranking_snapshot_id="rank-0002")
    assert generation_id(view) == generation_id(same_pair_elsewhere)
    ids = {generation_id(v) for v in (view, new_prices, new_ranking)}
    assert len(ids) == 3
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)


def test_the_event_id_changes_when_a_source_turns_stale() -> None:
    view = view_of(SAMPLE_ROWS)
    policy = StalenessPolicy(Settings(stale_after_seconds=100))
    fresh = policy.evaluate(view, {}, int(NOW.timestamp()))
    prices_stale = policy.evaluate(view, {}, int(NOW.timestamp()) + 30)  # prices 103 s old
    assert event_id(view, fresh) == generation_id(view)
    assert event_id(view, prices_stale) == generation_id(view) + "-stale-prices"


def test_an_event_is_an_id_then_one_data_line_per_line_then_a_blank_line() -> None:
    assert sse_event("abc", b'{"data":[]}') == b'id: abc\ndata: {"data":[]}\n\n'
    assert sse_event("abc", b"one\ntwo") == b"id: abc\ndata: one\ndata: two\n\n"
    assert HEARTBEAT.startswith(b":") and HEARTBEAT.endswith(b"\n\n")
