"""CoinMarketCap's credit budget: how often the pricing producer may call, provably.

**Price list** (``coinmarketcap.py``): a listings call costs 1 credit per 200 coins asked
for (rounded up, per call); a quotes call costs 1 credit per 100 ids. The operator's plan
gives ``monthly_credits`` and ``calls_per_minute``.

**The guarantee: never more than ``monthly_credits`` in any 31 days** (so in no calendar
month), retries included. Every call is charged to a ``CreditLedger`` at its full price
*before* it is sent, whatever the answer (CoinMarketCap does not charge errors, so this
over-counts: the safe side). The ledger is a GCRA (virtual scheduling) over credits:
with ``spc`` seconds per credit and a tolerance of ``B`` credits, a call is admitted at
``t`` only if ``t >= TAT - B*spc``, and then ``TAT = max(TAT, t) + cost*spc``. Since TAT
grows by at least ``cost*spc`` per call, the calls admitted from ``t_1`` to ``t_n``
satisfy ``sum(cost_1..cost_n-1) <= (t_n - t_1)/spc + B``, so any window of ``W`` seconds
holds at most ``W/spc + B + m`` credits (``m`` = the dearest single call). We set
``spc = MONTH / (monthly_credits - B - m)``: 31 days hold at most ``monthly_credits``.

``B`` is the retries of one poll (``(attempts - 1)`` times the dearest poll), so a
single failing poll retries at once; when failures go on, the ledger runs ahead of plan
and makes later calls wait (that is the stretch). The poll interval itself is planned
at the ledger's rate, so in normal operation nobody waits.

**Two ways to spend the budget** (``plan_pricing``):

- *full listing every poll*: ``interval = listing_credits * spc``. The defaults
  (1000 listings = 5 credits, 10,000 credits) give about 22 minutes.
- *quotes refresh* (``full_listing_seconds`` > 0): the full listing at most every
  ``F`` seconds, and in between a quotes call for the ranked assets only (200 ids =
  2 credits). Credits per second ``L/F + Q/interval <= 1/spc`` gives
  ``interval = Q * spc * F / (F - L*spc)``: about 9.5 minutes with the defaults and
  ``F`` = 6 h. Chosen only when it is shorter than the full-listing interval.

The ledger survives restarts: its state (``paid_until``) goes to the status topic before
every call, and a new ledger resumes from it (``credit_journal.py``), so a crash loop
cannot spend more than one long-lived process would. Run one pricing producer per key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from topcoins.producers.coinmarketcap import (
    listing_credits,
    listing_page_limits,
    quotes_batch_sizes,
    quotes_credits,
)
from topcoins.producers.ratelimit import NO_WAIT, Wait
from topcoins.settings import ENV_DOCS

__all__ = [
    "MONTH_SECONDS",
    "BudgetError",
    "CreditLedger",
    "CreditPlan",
    "PricingBudget",
    "plan_pricing",
]

MONTH_SECONDS = 31 * 86400  # the longest month: a budget safe for it is safe for every month

_CREDITS_ENV = ENV_DOCS["cmc_monthly_credits"].name
_DEPTH_ENV = ENV_DOCS["pricing_depth"].name


class BudgetError(ValueError):
    """The CoinMarketCap plan cannot pay for the configured pricing depth."""


@dataclass(frozen=True)
class CreditPlan:
    """The operator's CoinMarketCap plan."""

    monthly_credits: int = 10_000
    calls_per_minute: int = 30

    def __post_init__(self) -> None:
        if self.monthly_credits < 1 or self.calls_per_minute < 1:
            raise ValueError("monthly_credits and calls_per_minute must be positive")


class CreditLedger:
    """Admits calls at ``seconds_per_credit`` per credit, ``tolerance`` credits ahead at most.

    A ``Gate`` for ``ratelimit.Pacer``; the proof is in the module docstring.
    ``spent`` counts every credit charged since the ledger was created; ``on_charge``
    (metrics) sees each charge.
    """

    def __init__(
        self,
        seconds_per_credit: float,
        tolerance_credits: float,
        *,
        now: float,
        on_charge: Callable[[int], None] | None = None,
    ) -> None:
        if seconds_per_credit < 0 or tolerance_credits < 0:
            raise ValueError("seconds_per_credit and tolerance_credits must not be negative")
        self.seconds_per_credit = seconds_per_credit
        self.tolerance_credits = tolerance_credits
        self.spent = 0
        self._on_charge = on_charge
        self._tat = now  # theoretical arrival time: where spending at plan rate would be

    def wait(self, credits: int, now: float) -> Wait:
        allowed_at = self._tat - self.tolerance_credits * self.seconds_per_credit
        return Wait(allowed_at - now, "credits") if allowed_at > now else NO_WAIT

    def record(self, credits: int, now: float) -> None:
        self._tat = max(self._tat, now) + credits * self.seconds_per_credit
        self.spent += credits
        if self._on_charge is not None:
            self._on_charge(credits)

    @property
    def paid_until(self) -> float:
        """The ledger's state: until when the credits charged so far are paid for at plan
        rate (the GCRA's theoretical arrival time, in the monotonic seconds of ``now``)."""
        return self._tat

    def restore(self, paid_until: float) -> None:
        """Resume a previous ledger's state (``credit_journal``): a new ledger admits
        nothing that the old one, had it lived on, would not have admitted."""
        self._tat = max(self._tat, paid_until)

    def available(self, now: float) -> float:
        """Credits a call could spend at ``now`` without waiting (0 when calls wait)."""
        if self.seconds_per_credit <= 0:
            return float("inf")
        return max(0.0, self.tolerance_credits - self.ahead_seconds(now) / self.seconds_per_credit)

    def ahead_seconds(self, now: float) -> float:
        """How far spending runs ahead of plan, in seconds (0 when on or behind plan)."""
        return max(0.0, self._tat - now)


@dataclass(frozen=True)
class PricingBudget:
    """What the pricing producer runs on; every number is logged at start."""

    plan: CreditPlan
    depth: int
    ranked: int
    listing_credits: int
    listing_calls: int
    quotes_credits: int
    quotes_calls: int
    tolerance_credits: int
    reserve_credits: int
    seconds_per_credit: float
    full_listing_seconds: float | None  # None: every poll fetches the full listing
    budget_interval: float
    rate_interval: float
    configured_interval: float
    interval: float

    @property
    def quotes_refresh(self) -> bool:
        """True when the polls between two full listings refresh the ranked quotes only."""
        return self.full_listing_seconds is not None

    @property
    def planned_monthly_credits(self) -> float:
        """Credits 31 days of polls cost at ``interval`` without retries (an upper bound)."""
        polls = MONTH_SECONDS / self.interval
        if self.full_listing_seconds is None:
            return polls * self.listing_credits
        listings = MONTH_SECONDS / self.full_listing_seconds
        return listings * self.listing_credits + polls * self.quotes_credits

    def ledger(self, now: float, on_charge: Callable[[int], None] | None = None) -> CreditLedger:
        """A fresh ledger for this budget."""
        return CreditLedger(
            self.seconds_per_credit, self.tolerance_credits, now=now, on_charge=on_charge
        )

    def describe(self) -> str:
        """One line for the start-up log."""
        listing = f"the full listing of {self.depth} ({_credits(self.listing_credits)})"
        if self.full_listing_seconds is not None:
            what = (
                f"quotes of up to {self.ranked} ranked assets ({_credits(self.quotes_credits)}), "
                f"{listing} at most every {_seconds(self.full_listing_seconds)}"
            )
        else:
            what = listing
        return (
            f"polls every {_seconds(self.interval)}: {what}; plan {self.plan.monthly_credits} "
            f"credits per 31 days ({self.reserve_credits} kept for retries) and "
            f"{self.plan.calls_per_minute} calls/minute"
        )

    def log_fields(self) -> dict[str, object]:
        """The numbers behind ``describe``."""
        return {
            "monthly_credits": self.plan.monthly_credits,
            "calls_per_minute": self.plan.calls_per_minute,
            "depth": self.depth,
            "listing_credits": self.listing_credits,
            "listing_calls": self.listing_calls,
            "quotes_refresh": self.quotes_refresh,
            "quotes_ids": self.ranked if self.quotes_refresh else 0,
            "quotes_credits": self.quotes_credits if self.quotes_refresh else 0,
            "full_listing_seconds": self.full_listing_seconds,
            "reserve_credits": self.reserve_credits,
            "seconds_per_credit": round(self.seconds_per_credit, 3),
            "budget_interval_seconds": round(self.budget_interval, 3),
            "rate_interval_seconds": round(self.rate_interval, 3),
            "configured_poll_seconds": self.configured_interval,
            "poll_interval_seconds": round(self.interval, 3),
            "planned_monthly_credits": round(self.planned_monthly_credits, 1),
        }


def _credits(count: int) -> str:
    return f"{count} credit" if count == 1 else f"{count} credits"


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def plan_pricing(
    plan: CreditPlan,
    *,
    depth: int,
    ranked: int,
    poll_seconds: float,
    full_listing_seconds: float,
    retry_attempts: int,
) -> PricingBudget:
    """The pricing schedule for ``depth`` listings and up to ``ranked`` ranked assets.

    ``interval = max(poll_seconds, budget interval, calls per poll * 60 / calls_per_minute)``
    (see the module docstring). ``full_listing_seconds`` 0 turns the quotes refresh off.
    Raises ``BudgetError`` when the plan cannot pay for one listing plus its retries.
    """
    if depth < 1 or ranked < 1 or retry_attempts < 1 or poll_seconds <= 0:
        raise ValueError("depth, ranked, retry_attempts and poll_seconds must be positive")
    pages = listing_page_limits(depth)
    batches = quotes_batch_sizes(ranked)
    listing = sum(listing_credits(limit) for limit in pages)
    quotes = sum(quotes_credits(size) for size in batches)
    dearest_call = max(
        max(listing_credits(limit) for limit in pages),
        max(quotes_credits(size) for size in batches),
    )
    tolerance = (retry_attempts - 1) * max(listing, quotes)
    reserve = tolerance + dearest_call
    usable = plan.monthly_credits - reserve
    if usable <= 0:
        raise BudgetError(
            f"{_CREDITS_ENV}={plan.monthly_credits} cannot pay for {_DEPTH_ENV}={depth}: one "
            f"listing costs {listing} credits and {reserve} are kept for retries; raise "
            f"{_CREDITS_ENV} above {reserve} or lower {_DEPTH_ENV}"
        )
    spc = MONTH_SECONDS / usable
    full_interval = listing * spc
    budget_interval, refresh_every = full_interval, None
    listing_seconds = listing * spc
    if full_listing_seconds > 0 and quotes < listing and full_listing_seconds > listing_seconds:
        quotes_interval = (
            quotes * spc * full_listing_seconds / (full_listing_seconds - listing_seconds)
        )
        if quotes_interval < full_interval:
            budget_interval, refresh_every = quotes_interval, full_listing_seconds
    calls = max(len(pages), len(batches)) if refresh_every is not None else len(pages)
    rate_interval = calls * 60.0 / plan.calls_per_minute
    return PricingBudget(
        plan=plan,
        depth=depth,
        ranked=ranked,
        listing_credits=listing,
        listing_calls=len(pages),
        quotes_credits=quotes,
        quotes_calls=len(batches),
        tolerance_credits=tolerance,
        reserve_credits=reserve,
        seconds_per_credit=spc,
        full_listing_seconds=refresh_every,
        budget_interval=budget_interval,
        rate_interval=rate_interval,
        configured_interval=poll_seconds,
        interval=max(poll_seconds, budget_interval, rate_interval),
    )
