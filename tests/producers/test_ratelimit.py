"""Sliding windows, provider feedback and the Pacer, on a fake clock (no real sleeping)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.producers.conftest import FakeTime
from topcoins.producers.budget import CreditLedger
from topcoins.producers.errors import LocalLimitError, RateLimitError, RateLimitUsage
from topcoins.producers.ratelimit import (
    Pacer,
    SlidingWindowLimiter,
    WaitInterrupted,
    Window,
    plan_ranking,
)

CC_FREE_2024 = (
    Window("second", 1, 20),
    Window("minute", 60, 300),
    Window("hour", 3600, 3000),
    Window("day", 86400, 7500),
)


def pacer_for(time: FakeTime, *gates, **kwargs) -> Pacer:
    return Pacer("test", gates, sleep=time.sleep, monotonic=time.clock, **kwargs)


def test_windows_must_allow_something():
    with pytest.raises(ValueError):
        Window("second", 1, 0)
    with pytest.raises(ValueError):
        SlidingWindowLimiter([])


def test_a_full_window_waits_until_its_oldest_call_expires():
    limiter = SlidingWindowLimiter([Window("w", 10, 3)])
    for at in (0.0, 1.0, 2.0):
        assert limiter.wait(1, at).seconds == 0
        limiter.record(1, at)

    wait = limiter.wait(1, 2.0)

    assert (wait.seconds, wait.limit) == (8.0, "w")
    assert limiter.wait(1, 10.0).seconds == 0  # the call at 0 has left the window
    assert limiter.calls("w", 10.0) == 2


def test_the_longest_wait_of_all_windows_decides():
    limiter = SlidingWindowLimiter([Window("second", 1, 2), Window("minute", 60, 3)])
    for at in (0.0, 0.1, 1.5):
        limiter.record(1, at)

    wait = limiter.wait(1, 1.6)

    assert wait.limit == "minute"
    assert wait.seconds == pytest.approx(58.4)


def test_provider_counts_above_ours_block_for_a_whole_window():
    limiter = SlidingWindowLimiter(CC_FREE_2024)
    limiter.record(1, 0.0)
    usage = RateLimitUsage(
        calls_made={"second": 1, "minute": 1, "hour": 40, "day": 7500, "month": 9000},
        max_calls={"second": 20, "minute": 300, "hour": 3000, "day": 7500, "month": 50000},
    )

    limiter.observe(usage, 0.0)

    wait = limiter.wait(1, 0.0)
    assert (wait.seconds, wait.limit) == (86400.0, "day")
    assert limiter.calls("hour", 0.0) == 40
    assert limiter.calls("day", 86399.0) == 7500
    assert limiter.wait(1, 86400.0).seconds == 0


def test_provider_limits_below_ours_win_and_unknown_windows_are_added():
    limiter = SlidingWindowLimiter([Window("minute", 60, 300)])

    limiter.observe(RateLimitUsage(max_calls={"minute": 2, "month": 50000}), 0.0)

    assert {w.name: w.limit for w in limiter.windows} == {"minute": 2, "month": 50000}
    limiter.record(1, 0.0)
    limiter.record(1, 1.0)
    assert limiter.wait(1, 1.0).seconds == 59.0


def test_provider_counts_at_or_below_ours_clear_an_earlier_excess():
    limiter = SlidingWindowLimiter([Window("minute", 60, 5)])
    limiter.observe(RateLimitUsage(calls_made={"minute": 5}), 0.0)
    assert limiter.wait(1, 1.0).seconds == 59.0

    limiter.observe(RateLimitUsage(calls_made={"minute": 0}), 1.0)

    assert limiter.wait(1, 1.0).seconds == 0


async def test_pacer_waits_records_and_reports_each_wait():
    time = FakeTime()
    waits: list[tuple[str, float]] = []
    limiter = SlidingWindowLimiter([Window("minute", 60, 2)])
    pacer = pacer_for(time, limiter, on_wait=lambda limit, s: waits.append((limit, s)))

    for _ in range(3):
        await pacer.acquire()

    assert waits == [("minute", 60.0)]
    assert time.now == 1060.0
    assert limiter.calls("minute", time.now) == 1  # both calls at 1000 left at 1060


async def test_pacer_charges_credits_to_the_ledger():
    time = FakeTime()
    ledger = CreditLedger(10.0, 0, now=time.now)
    pacer = pacer_for(time, SlidingWindowLimiter([Window("minute", 60, 30)]), ledger)

    await pacer.acquire(5)
    await pacer.acquire(2)

    assert time.sleeps == [50.0]
    assert ledger.spent == 7


async def test_a_wait_longer_than_max_wait_fails_at_once_without_charging():
    time = FakeTime()
    limiter = SlidingWindowLimiter([Window("day", 86400, 1)])
    pacer = pacer_for(time, limiter, max_wait=60.0)
    await pacer.acquire()

    with pytest.raises(LocalLimitError) as caught:
        await pacer.acquire()

    error = caught.value
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 86400.0
    assert error.kind == "rate_limit"
    assert "day limit" in str(error)
    assert time.sleeps == []
    assert limiter.calls("day", time.now) == 1


async def test_stop_during_a_wait_interrupts_without_charging():
    stop = asyncio.Event()
    time = FakeTime(stop, stop_after=1)
    limiter = SlidingWindowLimiter([Window("minute", 60, 1)])
    pacer = pacer_for(time, limiter, stop=stop)
    await pacer.acquire()

    with pytest.raises(WaitInterrupted):
        await pacer.acquire()

    assert limiter.calls("minute", time.now) == 1


async def test_a_hold_delays_every_call_until_it_ends():
    time = FakeTime()
    waits: list[tuple[str, float]] = []
    pacer = pacer_for(time, on_wait=lambda limit, s: waits.append((limit, s)))

    pacer.hold(17.0)
    await pacer.acquire()

    assert waits == [("retry_after", 17.0)]
    pacer.hold(float("inf"))  # ignored: no usable time
    await pacer.acquire()
    assert time.now == 1017.0


async def test_observe_reaches_the_limiters():
    time = FakeTime()
    limiter = SlidingWindowLimiter([Window("second", 1, 20)])
    pacer = pacer_for(time, limiter, max_wait=0.5)

    pacer.observe(RateLimitUsage(calls_made={"second": 20}, max_calls={"second": 20}))

    with pytest.raises(LocalLimitError):
        await pacer.acquire()


async def test_a_pacer_without_gates_never_waits():
    time = FakeTime()

    await pacer_for(time).acquire(100)

    assert time.sleeps == []


@settings(max_examples=100, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=120),
    limits=st.tuples(
        st.integers(min_value=1, max_value=5),
        st.integers(min_value=1, max_value=20),
        st.integers(min_value=1, max_value=60),
    ),
)
async def test_calls_through_the_pacer_never_exceed_any_window(gaps, limits):
    windows = [Window("second", 1, limits[0]), Window("ten", 10, limits[1])]
    windows.append(Window("minute", 60, limits[2]))
    time = FakeTime()
    pacer = pacer_for(time, SlidingWindowLimiter(windows))
    sent: list[float] = []
    for gap in gaps:
        time.now += gap
        await pacer.acquire()
        sent.append(time.now)
    for window in windows:
        for start in sent:
            inside = [at for at in sent if start <= at < start + window.seconds]
            assert len(inside) <= window.limit


@pytest.mark.parametrize(
    ("depth", "poll", "interval", "pages"),
    [
        (200, 60.0, 60.0, 2),  # the free plan leaves room at the default interval
        (200, 1.0, 25.6, 2),  # 2 pages x polls must stay within 90 % of 7500 a day
        (300, 1.0, 38.4, 3),
    ],
)
def test_ranking_interval_is_stretched_to_the_day_limit(depth, poll, interval, pages):
    pace = plan_ranking(CC_FREE_2024, depth=depth, page_size=100, poll_seconds=poll)

    assert pace.pages == pages
    assert pace.interval == pytest.approx(interval)
    assert pace.log_fields()["poll_interval_seconds"] == pytest.approx(interval, abs=0.001)
