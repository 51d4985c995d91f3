"""Ages, thresholds and the per-second freshness of the served view."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.web.factories import NOW, PRICED_AT, RANKED_AT, SAMPLE_ROWS, Clock, meta, status, view_of
from topcoins.settings import Settings
from topcoins.web.freshness import (
    Freshness,
    FreshnessClock,
    Source,
    SourceFreshness,
    StalenessPolicy,
)
from topcoins.web.view import TopListView


def at(moment: datetime) -> int:
    """The ``as_of`` of an answer served at ``moment`` (the end of its second)."""
    return int(moment.timestamp()) + 1


def test_sources_name_their_providers() -> None:
    assert Source.RANKING.provider == "cryptocompare"
    assert Source.PRICES.provider == "coinmarketcap"
    assert [str(s) for s in Source] == ["ranking", "prices"]


@pytest.mark.parametrize(
    ("settings", "reported", "expected"),
    [
        # derived: 3 polls + one HTTP timeout, from the settings ...
        (Settings(), None, {Source.RANKING: 190.0, Source.PRICES: 190.0}),
        (
            Settings(ranking_poll_seconds=30, pricing_poll_seconds=120, http_timeout_seconds=5),
            None,
            {Source.RANKING: 95.0, Source.PRICES: 365.0},
        ),
        # ... or from the interval the producer last reported
        (Settings(), 10.0, {Source.RANKING: 40.0, Source.PRICES: 40.0}),
        # a nonsense reported interval falls back to the settings
        (Settings(), 0.0, {Source.RANKING: 190.0, Source.PRICES: 190.0}),
        (Settings(), math.nan, {Source.RANKING: 190.0, Source.PRICES: 190.0}),
        # STALE_AFTER_SECONDS wins over everything
        (Settings(stale_after_seconds=42.5), 10.0, {Source.RANKING: 42.5, Source.PRICES: 42.5}),
    ],
)
def test_thresholds(
    settings: Settings, reported: float | None, expected: dict[Source, float]
) -> None:
    policy = StalenessPolicy(settings)
    for source, seconds in expected.items():
        report = None
        if reported is not None:
            report = status(source.provider, poll_interval_seconds=reported)
        assert policy.stale_after(source, report) == seconds


def test_ages_are_whole_seconds_at_the_end_of_the_current_second(
    sample_view: TopListView,
) -> None:
    freshness = StalenessPolicy(Settings()).evaluate(sample_view, {}, at(NOW))
    # NOW is 12:00:30.250, evaluated at 12:00:31: ranking (12:00:00.000) 31 s, prices
    # (11:59:17.500) 73.5 s, rounded down.
    assert freshness == Freshness(
        as_of=at(NOW),
        ranking=SourceFreshness(Source.RANKING, RANKED_AT, 31, 190.0, stale=False),
        prices=SourceFreshness(Source.PRICES, PRICED_AT, 73, 190.0, stale=False),
    )
    assert freshness.stale is False
    assert freshness.stale_sources == ()
    assert freshness.data_age_seconds == 73


@pytest.mark.parametrize(
    ("served_at", "stale"),
    [
        # threshold 190 s; prices fetched at 11:59:17.500 are 190 s old at 12:02:27.500.
        # Served during 12:02:26, evaluated at 12:02:27 (age 189.5 s): fresh
        (PRICED_AT + timedelta(seconds=189), False),
        (PRICED_AT + timedelta(seconds=189, milliseconds=499), False),
        # served at 12:02:27.000, evaluated at 12:02:28 (190.5 s): stale half a second early
        (PRICED_AT + timedelta(seconds=189, milliseconds=500), True),
        (PRICED_AT + timedelta(seconds=190), True),
        (PRICED_AT + timedelta(hours=5), True),
    ],
)
def test_stale_turns_true_up_to_a_second_early_never_late(
    sample_view: TopListView, served_at: datetime, stale: bool
) -> None:
    freshness = StalenessPolicy(Settings()).evaluate(sample_view, {}, at(served_at))
    assert freshness.prices.stale is stale
    assert (Source.PRICES in freshness.stale_sources) is stale


def test_each_source_has_its_own_threshold(sample_view: TopListView) -> None:
    statuses = {"cryptocompare": status("cryptocompare", poll_interval_seconds=5.0)}
    # ranking: 3 x 5 + 10 = 25 s < 31 s; prices: 190 s > 73 s
    freshness = StalenessPolicy(Settings()).evaluate(sample_view, statuses, at(NOW))
    assert freshness.ranking.stale_after_seconds == 25.0
    assert freshness.stale_sources == (Source.RANKING,)
    assert freshness.stale and freshness.data_age_seconds == 73


def test_a_view_without_prices_is_stale() -> None:
    row = SAMPLE_ROWS[3]  # WIF: no price
    view = view_of([row], dataclasses.replace(meta([row.symbol]), prices_fetched_at=None))
    freshness = StalenessPolicy(Settings()).evaluate(view, {}, at(NOW))
    assert freshness.prices == SourceFreshness(Source.PRICES, None, None, 190.0, stale=True)
    assert freshness.stale_sources == (Source.PRICES,)
    assert freshness.data_age_seconds == 31


def test_no_view_is_stale_everywhere() -> None:
    freshness = StalenessPolicy(Settings()).evaluate(None, {}, at(NOW))
    assert freshness.stale_sources == (Source.RANKING, Source.PRICES)
    assert freshness.data_age_seconds is None


def test_data_from_the_future_is_age_zero_and_fresh(sample_view: TopListView) -> None:
    freshness = StalenessPolicy(Settings()).evaluate(sample_view, {}, at(RANKED_AT) - 60)
    assert freshness.ranking.age_seconds == 0 and not freshness.ranking.stale


def test_clock_reuses_one_freshness_per_second_view_and_statuses(
    sample_view: TopListView,
) -> None:
    clock = Clock()
    freshness = FreshnessClock(StalenessPolicy(Settings()), clock)
    statuses: dict[str, object] = {}
    first = freshness.current(sample_view, statuses)  # type: ignore[arg-type]
    clock.advance(0.7)  # 12:00:30.950: same second
    assert freshness.current(sample_view, statuses) is first  # type: ignore[arg-type]
    clock.advance(0.1)  # 12:00:31.050: next second
    second = freshness.current(sample_view, statuses)  # type: ignore[arg-type]
    assert second is not first and second.as_of == first.as_of + 1
    assert second.ranking.age_seconds == 32
    assert freshness.current(sample_view, {}) is not second  # other statuses mapping
    other_view = view_of(SAMPLE_ROWS[:1])
    assert freshness.current(other_view, {}).ranking.fetched_at == RANKED_AT


@settings(max_examples=300, deadline=None)
@given(
    fetched_ms=st.integers(min_value=1_700_000_000_000, max_value=1_700_000_100_000),
    served_after_ms=st.integers(min_value=-5_000, max_value=400_000),
    stale_after=st.floats(min_value=0.001, max_value=300.0),
)
def test_never_fresh_when_stale_and_never_more_than_a_second_early(
    fetched_ms: int, served_after_ms: int, stale_after: float
) -> None:
    fetched_at = datetime.fromtimestamp(fetched_ms / 1000, UTC)
    view = dataclasses.replace(view_of(SAMPLE_ROWS), ranking_updated_at=fetched_at)
    served_ms = fetched_ms + served_after_ms  # the request's instant
    as_of = served_ms // 1000 + 1
    ranking = (
        StalenessPolicy(Settings(stale_after_seconds=stale_after)).evaluate(view, {}, as_of).ranking
    )
    true_age = served_after_ms / 1000
    if true_age > stale_after:
        assert ranking.stale  # never served as fresh when it is not
    if ranking.stale:
        assert true_age > stale_after - 1  # flagged at most one second early
        assert ranking.age_seconds is not None and ranking.age_seconds >= int(stale_after)
    assert ranking.age_seconds is not None
    assert max(0, math.floor(true_age)) <= ranking.age_seconds <= max(0, math.floor(true_age)) + 1
