"""What each producer process does: ``pricing_job`` and ``ranking_job`` build a ``ProducerJob``
(its provider client, schedule, topics and fetch) from the settings; ``main.serve`` runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from topcoins.kafka_security import kafka_client_options
from topcoins.producers.budget import CreditPlan, plan_pricing
from topcoins.producers.coinmarketcap import CoinMarketCapClient
from topcoins.producers.credit_journal import CreditJournal, JournaledPacer
from topcoins.producers.cryptocompare import PAGE_SIZE, CryptoCompareClient
from topcoins.producers.metrics import ProducerMetrics
from topcoins.producers.pricing import PriceSnapshotFetcher
from topcoins.producers.ranked_ids import RankedIdsReader
from topcoins.producers.ratelimit import Pacer, SlidingWindowLimiter, Window, plan_ranking
from topcoins.schemas.records import Snapshot
from topcoins.schemas.topics import TopicSpec
from topcoins.settings import ENV_DOCS, Settings
from topcoins.stuck import StuckConsumers

__all__ = [
    "MIN_MAX_WAIT_SECONDS",
    "PRICING_COMPONENT",
    "RANKING_COMPONENT",
    "Fetch",
    "FetchOpener",
    "PollPlan",
    "ProducerJob",
    "pricing_job",
    "ranking_job",
]

logger = logging.getLogger(__name__)

PRICING_COMPONENT = "pricing-producer"
RANKING_COMPONENT = "ranking-producer"
# A call waits for our own limits up to one poll interval, and never less than this;
# a longer wait fails the poll at once (LocalLimitError), without calling.
MIN_MAX_WAIT_SECONDS = 60.0

Fetch = Callable[[], Awaitable[Snapshot]]
# (http client, stop event, metrics) -> an async context that yields the poll's fetch.
FetchOpener = Callable[
    [httpx.AsyncClient, asyncio.Event, ProducerMetrics], AbstractAsyncContextManager[Fetch]
]


class PollPlan(Protocol):
    """A producer's schedule (``PricingBudget``, ``RankingPace``): its effective interval and
    the numbers behind it."""

    @property
    def interval(self) -> float: ...

    def describe(self) -> str: ...

    def log_fields(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class ProducerJob:
    """What distinguishes the pricing producer from the ranking producer."""

    component: str
    provider: str
    base_url: str
    api_key: str = field(repr=False)
    key_env: str
    plan: PollPlan
    ops_port: int
    topic: TopicSpec
    status_topic: TopicSpec
    open_fetch: FetchOpener
    credits_per_call: Mapping[str, int] = field(default_factory=dict)
    # Topics the job reads (the pricing producer's top topic), ensured at start too.
    read_topics: tuple[TopicSpec, ...] = ()
    # The pricing producer's credit ledger across restarts; it needs the status reporter.
    credit_journal: CreditJournal | None = None
    # The Kafka consumers the job reads with (the ranked-ids reader): /readyz names a stuck one.
    consumers: StuckConsumers = field(default_factory=StuckConsumers)

    @property
    def interval(self) -> float:
        """The effective poll interval: after the credit budget and the rate limits."""
        return self.plan.interval

    @property
    def schedule(self) -> str:
        """One line for the start-up log: the interval and why."""
        return self.plan.describe()

    @property
    def schedule_fields(self) -> dict[str, object]:
        """The numbers behind ``schedule``."""
        return self.plan.log_fields()

    @property
    def topics(self) -> tuple[TopicSpec, ...]:
        """Every topic ensured at start: the job's snapshots, the status, what it reads."""
        return (self.topic, self.status_topic, *self.read_topics)


def _max_wait(interval: float) -> float:
    return max(interval, MIN_MAX_WAIT_SECONDS)


def _on_wait(provider: str, metrics: ProducerMetrics) -> Callable[[str, float], None]:
    def on_wait(limit: str, seconds: float) -> None:
        metrics.rate_limit_wait(limit, seconds)
        logger.info(
            "waiting for our rate limit",
            extra={"provider": provider, "limit": limit, "wait_seconds": round(seconds, 3)},
        )

    return on_wait


def pricing_job(settings: Settings) -> ProducerJob:
    """CoinMarketCap listings (and quotes of the ranked ids) -> the ``.prices`` topic.

    Raises ``BudgetError`` when the plan cannot pay for ``PRICING_DEPTH``.
    """
    budget = plan_pricing(
        CreditPlan(settings.cmc_monthly_credits, settings.cmc_calls_per_minute),
        depth=settings.pricing_depth,
        ranked=settings.ranking_depth,
        poll_seconds=settings.pricing_poll_seconds,
        full_listing_seconds=settings.pricing_full_listing_seconds,
        retry_attempts=settings.producer_retry_attempts,
    )
    topics = settings.topics
    provider = CoinMarketCapClient.provider
    journal = CreditJournal(
        settings.kafka_bootstrap_servers,
        topics.status,
        provider.encode(),
        client_options=kafka_client_options(settings),
    )
    consumers = StuckConsumers()

    @contextlib.asynccontextmanager
    async def open_fetch(
        http: httpx.AsyncClient, stop: asyncio.Event, metrics: ProducerMetrics
    ) -> AsyncIterator[Fetch]:
        per_minute = SlidingWindowLimiter([Window("minute", 60.0, settings.cmc_calls_per_minute)])
        ledger = budget.ledger(time.monotonic(), on_charge=metrics.credits_spent)
        journal.attach(ledger)  # a restart resumes the ledger, never a clean one
        metrics.watch_credits(
            budget.plan.monthly_credits, lambda: ledger.available(time.monotonic())
        )
        pacer = JournaledPacer(
            provider,
            (per_minute, ledger),
            journal=journal,
            stop=stop,
            max_wait=_max_wait(budget.interval),
            on_wait=_on_wait(provider, metrics),
        )
        client = CoinMarketCapClient(
            http,
            settings.cmc_api_key,
            pacer=pacer,
            on_drop=metrics.dropped_asset,
            on_null=metrics.nulled_value,
        )
        if not budget.quotes_refresh:
            yield lambda: client.fetch_listings(settings.pricing_depth)
            return
        reader = RankedIdsReader(
            settings.kafka_bootstrap_servers,
            topics.top,
            metrics,
            client_id=PRICING_COMPONENT,
            client_options=kafka_client_options(settings),
        )
        consumers.watch(reader.topic, lambda: reader.stuck_reason)
        async with reader:
            yield PriceSnapshotFetcher(
                client,
                depth=settings.pricing_depth,
                max_ids=budget.ranked,
                full_listing_seconds=budget.full_listing_seconds,
                ranked_ids=reader.ids,
            )

    credits = {"listings": budget.listing_credits}
    if budget.quotes_refresh:
        credits["quotes"] = budget.quotes_credits
    return ProducerJob(
        component=PRICING_COMPONENT,
        provider=provider,
        base_url=settings.cmc_base_url,
        api_key=settings.cmc_api_key,
        key_env=ENV_DOCS["cmc_api_key"].name,
        plan=budget,
        ops_port=settings.pricing_ops_port,
        topic=topics.prices,
        status_topic=topics.status,
        open_fetch=open_fetch,
        credits_per_call=credits,
        read_topics=(topics.top,) if budget.quotes_refresh else (),
        credit_journal=journal,
        consumers=consumers,
    )


def ranking_job(settings: Settings) -> ProducerJob:
    """CryptoCompare toplist by 24h total volume -> the ``.ranks`` topic."""
    windows = (
        Window("second", 1.0, settings.cryptocompare_calls_per_second),
        Window("minute", 60.0, settings.cryptocompare_calls_per_minute),
        Window("hour", 3600.0, settings.cryptocompare_calls_per_hour),
        Window("day", 86400.0, settings.cryptocompare_calls_per_day),
    )
    pace = plan_ranking(
        windows,
        depth=settings.ranking_depth,
        page_size=PAGE_SIZE,
        poll_seconds=settings.ranking_poll_seconds,
    )
    topics = settings.topics
    provider = CryptoCompareClient.provider

    @contextlib.asynccontextmanager
    async def open_fetch(
        http: httpx.AsyncClient, stop: asyncio.Event, metrics: ProducerMetrics
    ) -> AsyncIterator[Fetch]:
        pacer = Pacer(
            provider,
            (SlidingWindowLimiter(windows),),
            stop=stop,
            max_wait=_max_wait(pace.interval),
            on_wait=_on_wait(provider, metrics),
        )
        client = CryptoCompareClient(
            http, settings.cryptocompare_api_key, pacer=pacer, on_drop=metrics.dropped_asset
        )
        yield lambda: client.fetch_ranking(settings.ranking_depth)

    return ProducerJob(
        component=RANKING_COMPONENT,
        provider=provider,
        base_url=settings.cryptocompare_base_url,
        api_key=settings.cryptocompare_api_key,
        key_env=ENV_DOCS["cryptocompare_api_key"].name,
        plan=pace,
        ops_port=settings.ranking_ops_port,
        topic=topics.ranks,
        status_topic=topics.status,
        open_fetch=open_fetch,
    )
