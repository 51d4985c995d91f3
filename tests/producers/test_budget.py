"""The CoinMarketCap credit budget: prices, the schedule and the ledger's guarantee."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topcoins.producers.budget import (
    MONTH_SECONDS,
    BudgetError,
    CreditLedger,
    CreditPlan,
    PricingBudget,
    plan_pricing,
)
from topcoins.producers.coinmarketcap import (
    listing_credits,
    listing_page_limits,
    quotes_batch_sizes,
    quotes_credits,
)

FREE = CreditPlan(monthly_credits=10_000, calls_per_minute=30)


def plan(**overrides) -> PricingBudget:
    values = {
        "depth": 1000,
        "ranked": 200,
        "poll_seconds": 60.0,
        "full_listing_seconds": 21_600.0,
        "retry_attempts": 3,
    }
    return plan_pricing(overrides.pop("plan", FREE), **(values | overrides))


@pytest.mark.parametrize(
    ("depth", "limits", "credits"),
    [
        (1, [1], 1),
        (200, [200], 1),
        (201, [201], 2),
        (1000, [1000], 5),
        (5000, [5000], 25),
        (5001, [5000, 1], 26),
        (7000, [5000, 2000], 35),
    ],
)
def test_listing_prices(depth, limits, credits):
    assert listing_page_limits(depth) == limits
    assert sum(listing_credits(limit) for limit in limits) == credits == math.ceil(depth / 200)


@pytest.mark.parametrize(
    ("count", "sizes", "credits"),
    [(1, [1], 1), (100, [100], 1), (101, [101], 2), (200, [200], 2), (600, [500, 100], 6)],
)
def test_quotes_prices(count, sizes, credits):
    assert quotes_batch_sizes(count) == sizes
    assert sum(quotes_credits(size) for size in sizes) == credits


def test_free_plan_with_full_listings_only_polls_about_every_22_minutes():
    budget = plan(full_listing_seconds=0)

    assert not budget.quotes_refresh
    assert budget.listing_credits == 5
    assert budget.reserve_credits == 2 * 5 + 5  # two retries of a listing + the dearest call
    assert budget.seconds_per_credit == pytest.approx(MONTH_SECONDS / 9985)
    assert budget.interval == pytest.approx(5 * MONTH_SECONDS / 9985)
    assert budget.interval / 60 == pytest.approx(22.35, abs=0.01)
    assert budget.planned_monthly_credits == pytest.approx(9985)


def test_free_plan_with_quotes_refresh_polls_about_every_9_5_minutes():
    budget = plan()

    assert budget.quotes_refresh
    assert (budget.listing_credits, budget.quotes_credits) == (5, 2)
    spc = MONTH_SECONDS / 9985
    assert budget.interval == pytest.approx(2 * spc * 21_600 / (21_600 - 5 * spc))
    assert budget.interval / 60 == pytest.approx(9.53, abs=0.01)
    assert budget.planned_monthly_credits <= 10_000 - budget.reserve_credits + 1e-6
    assert budget.full_listing_seconds == 21_600


def test_rate_limit_and_configured_interval_are_floors():
    rich = CreditPlan(monthly_credits=100_000_000, calls_per_minute=30)

    assert plan(plan=rich, poll_seconds=1.0).interval == 2.0  # 60 / 30 calls per minute
    assert plan(plan=rich, poll_seconds=300.0).interval == 300.0
    slow = CreditPlan(monthly_credits=100_000_000, calls_per_minute=1)
    assert plan(plan=slow, depth=12_000, full_listing_seconds=0).rate_interval == 180.0


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"full_listing_seconds": 0}, "turned off"),
        ({"depth": 200}, "a listing of 200 (1 credit) is cheaper than 200 quotes (2)"),
        ({"full_listing_seconds": 1200}, "full listings alone would use the budget"),
        ({"full_listing_seconds": 2000}, "not shorter than full listings only"),
    ],
)
def test_quotes_refresh_only_when_it_pays(overrides, why):
    assert not plan(**overrides).quotes_refresh, why


def test_a_plan_that_cannot_pay_for_one_listing_says_what_to_change():
    with pytest.raises(BudgetError) as caught:
        plan(plan=CreditPlan(monthly_credits=15), depth=1000)

    message = str(caught.value)
    assert "CMC_MONTHLY_CREDITS=15" in message
    assert "PRICING_DEPTH=1000" in message
    assert "\n" not in message


def test_log_fields_hold_the_numbers():
    fields = plan().log_fields()

    assert fields["poll_interval_seconds"] == pytest.approx(572.0, abs=0.01)
    assert fields["listing_credits"] == 5
    assert fields["quotes_credits"] == 2
    assert "572 s" in plan().describe()


# --- the ledger ---------------------------------------------------------------------------


def test_ledger_admits_the_tolerance_then_paces():
    ledger = CreditLedger(seconds_per_credit=10.0, tolerance_credits=4, now=0.0)

    for _ in range(5):  # 4 credits of tolerance plus the call that is on time
        assert ledger.wait(1, 0.0).seconds == 0
        ledger.record(1, 0.0)

    wait = ledger.wait(1, 0.0)
    assert (wait.seconds, wait.limit) == (10.0, "credits")
    assert ledger.wait(1, 10.0).seconds == 0
    assert ledger.spent == 5


def test_ledger_reports_each_charge():
    charges: list[int] = []
    ledger = CreditLedger(1.0, 0, now=0.0, on_charge=charges.append)

    ledger.record(5, 0.0)

    assert charges == [5]
    assert ledger.ahead_seconds(0.0) == 5.0


@settings(max_examples=200, deadline=None)
@given(
    spc=st.floats(min_value=0.5, max_value=20),
    tolerance=st.integers(min_value=0, max_value=10),
    calls=st.lists(
        st.tuples(st.floats(min_value=0, max_value=50), st.integers(min_value=1, max_value=5)),
        min_size=1,
        max_size=80,
    ),
    window=st.floats(min_value=1, max_value=300),
)
def test_no_window_holds_more_than_its_share_plus_tolerance_and_one_call(
    spc, tolerance, calls, window
):
    """The module docstring's bound, for callers that wait as told: W/spc + B + m."""
    ledger = CreditLedger(spc, tolerance, now=0.0)
    now, sent = 0.0, []
    for gap, cost in calls:
        now += gap
        now += max(0.0, ledger.wait(cost, now).seconds)
        ledger.record(cost, now)
        sent.append((now, cost))
    dearest = max(cost for _, cost in calls)
    for start, _ in sent:
        inside = sum(cost for at, cost in sent if start <= at <= start + window)
        assert inside <= window / spc + tolerance + dearest + 1e-9


def test_a_month_of_failing_polls_stays_within_the_plan():
    """Every poll fails and retries twice, each call charged: the ledger holds 31 days."""
    budget = plan()
    ledger = budget.ledger(0.0)
    now, spent = 0.0, 0
    while now < MONTH_SECONDS:
        poll_started = now
        for _ in range(3):  # the first call and two retries, each charged in full
            now += max(0.0, ledger.wait(budget.quotes_credits, now).seconds)
            if now >= MONTH_SECONDS:
                break
            ledger.record(budget.quotes_credits, now)
            spent += budget.quotes_credits
        now = max(now, poll_started + budget.interval)

    assert spent <= FREE.monthly_credits


def test_a_restored_ledger_admits_only_what_the_old_one_would_have():
    old = CreditLedger(seconds_per_credit=10.0, tolerance_credits=5, now=0.0)
    old.record(5, 0.0)
    old.record(5, 0.0)  # 10 credits at t=0: paid until t=100, 50 s beyond the tolerance
    assert old.wait(1, 0.0).seconds == 50.0
    fresh = CreditLedger(seconds_per_credit=10.0, tolerance_credits=5, now=0.0)
    assert fresh.wait(1, 0.0).seconds == 0  # a clean ledger would admit a call at once
    fresh.restore(old.paid_until)
    assert fresh.wait(1, 0.0) == old.wait(1, 0.0)
    fresh.restore(0.0)  # an older state never moves the ledger back
    assert fresh.paid_until == 100.0


def test_available_credits_shrink_as_spending_runs_ahead_of_plan():
    ledger = CreditLedger(seconds_per_credit=10.0, tolerance_credits=5, now=0.0)
    assert ledger.available(0.0) == 5  # the whole tolerance
    ledger.record(3, 0.0)  # paid until t=30
    assert ledger.available(0.0) == 2
    assert ledger.available(20.0) == 4  # the plan's pace pays 2 of them back by t=20
    ledger.record(5, 20.0)  # paid until t=80: ahead of the tolerance, calls wait
    assert ledger.available(20.0) == 0
    assert ledger.wait(1, 20.0).seconds > 0
    assert ledger.available(80.0) == 5
