"""How old the served data is, and whether it is stale.

The list has two sources: the ranking (CryptoCompare) and the prices (CoinMarketCap).
For each, the *age* is the time since the served view's data was fetched from the
provider, and the source is *stale* when that age exceeds its threshold:

* ``STALE_AFTER_SECONDS`` when set, for both sources;
* otherwise ``3 x poll interval + HTTP_TIMEOUT_SECONDS`` per source, the poll interval
  being the one the producer last reported on the status topic
  (``ProducerStatus.poll_interval_seconds``), else ``RANKING_POLL_SECONDS`` /
  ``PRICING_POLL_SECONDS``. With the defaults: 3 x 60 + 10 = 190 seconds.

A source with no data at all (a view without prices, or no view) is stale.

Ages are evaluated at whole seconds so that encoded answers can be reused: an answer
served during the wall-clock second ``[S, S+1)`` is evaluated at the instant ``S + 1``,
the end of that second. Ages are whole seconds rounded down (never below the true age
rounded down) and data turns stale up to one second early, never late.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from topcoins.schemas.records import ProducerStatus
from topcoins.settings import Settings
from topcoins.web.view import TopListView

__all__ = [
    "STALE_AFTER_POLLS",
    "Freshness",
    "FreshnessClock",
    "Source",
    "SourceFreshness",
    "StalenessPolicy",
]

# Missed polls (plus one provider timeout) after which a source counts as stale.
STALE_AFTER_POLLS = 3

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


class Source(StrEnum):
    """One input of the list, named after what it provides."""

    RANKING = "ranking"
    PRICES = "prices"

    @property
    def provider(self) -> str:
        """The provider name, as on the status topic (its key and ``provider`` field)."""
        return _PROVIDERS[self]


_PROVIDERS = {Source.RANKING: "cryptocompare", Source.PRICES: "coinmarketcap"}


@dataclass(frozen=True, slots=True)
class SourceFreshness:
    """How old one source's served data is, at ``Freshness.as_of``."""

    source: Source
    fetched_at: datetime | None
    age_seconds: int | None
    stale_after_seconds: float
    stale: bool


@dataclass(frozen=True, slots=True)
class Freshness:
    """The served view's ages and staleness, evaluated at the unix second ``as_of``."""

    as_of: int
    ranking: SourceFreshness
    prices: SourceFreshness

    @property
    def sources(self) -> tuple[SourceFreshness, SourceFreshness]:
        """Both sources, ranking first."""
        return (self.ranking, self.prices)

    @property
    def stale_sources(self) -> tuple[Source, ...]:
        """The stale sources, ranking first; empty when everything is fresh."""
        return tuple(item.source for item in self.sources if item.stale)

    @property
    def stale(self) -> bool:
        """True when any source is stale."""
        return self.ranking.stale or self.prices.stale

    @property
    def data_age_seconds(self) -> int | None:
        """The age of the oldest source with data, or None when there is no data."""
        ages = [item.age_seconds for item in self.sources if item.age_seconds is not None]
        return max(ages) if ages else None


class StalenessPolicy:
    """The thresholds of ``settings`` and the evaluation of a view against them."""

    def __init__(self, settings: Settings) -> None:
        self.fixed = settings.stale_after_seconds
        self.timeout = settings.http_timeout_seconds
        self.default_poll = {
            Source.RANKING: settings.ranking_poll_seconds,
            Source.PRICES: settings.pricing_poll_seconds,
        }

    def stale_after(self, source: Source, status: ProducerStatus | None) -> float:
        """Seconds after which ``source``'s data is stale (see the module docstring)."""
        if self.fixed is not None:
            return self.fixed
        poll = self.default_poll[source]
        reported = None if status is None else status.poll_interval_seconds
        if reported is not None and math.isfinite(reported) and reported > 0:
            poll = reported
        return STALE_AFTER_POLLS * poll + self.timeout

    def evaluate(
        self,
        view: TopListView | None,
        statuses: Mapping[str, ProducerStatus],
        as_of: int,
    ) -> Freshness:
        """Ages and staleness of ``view`` (None: nothing served) at the unix second ``as_of``."""
        ranking_at = None if view is None else view.ranking_updated_at
        prices_at = None if view is None else view.prices_updated_at
        return Freshness(
            as_of=as_of,
            ranking=self._source(Source.RANKING, ranking_at, statuses, as_of),
            prices=self._source(Source.PRICES, prices_at, statuses, as_of),
        )

    def _source(
        self,
        source: Source,
        fetched_at: datetime | None,
        statuses: Mapping[str, ProducerStatus],
        as_of: int,
    ) -> SourceFreshness:
        stale_after = self.stale_after(source, statuses.get(source.provider))
        if fetched_at is None:
            return SourceFreshness(source, None, None, stale_after, stale=True)
        age_ms = as_of * 1000 - (fetched_at - _EPOCH) // _MILLISECOND
        return SourceFreshness(
            source,
            fetched_at,
            age_seconds=max(0, age_ms // 1000),
            stale_after_seconds=stale_after,
            stale=age_ms > stale_after * 1000,
        )


class FreshnessClock:
    """The current ``Freshness``, evaluated once per wall-clock second (the hot path's).

    ``current`` returns the same object for as long as the second, the view and the
    statuses mapping stay the same, so callers can cache what they derive from it by
    identity.
    """

    def __init__(self, policy: StalenessPolicy, unix_now: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self.unix_now = unix_now
        self._freshness: Freshness | None = None
        self._view: TopListView | None = None
        self._statuses: Mapping[str, ProducerStatus] | None = None

    def current(
        self, view: TopListView | None, statuses: Mapping[str, ProducerStatus]
    ) -> Freshness:
        """The freshness of ``view`` for the current second (evaluated at its end)."""
        as_of = int(self.unix_now()) + 1
        freshness = self._freshness
        if (
            freshness is not None
            and freshness.as_of == as_of
            and self._view is view
            and self._statuses is statuses
        ):
            return freshness
        freshness = self._freshness = self.policy.evaluate(view, statuses, as_of)
        self._view = view
        self._statuses = statuses
        return freshness
