"""Entry points of the two producer processes: ``run_pricing`` and ``run_ranking``.

Each one logs its settings and its schedule (the effective poll interval and the
numbers behind it), waits for Kafka, creates its topics (its snapshots and the status
topic), serves health and metrics, then polls its provider until SIGTERM/SIGINT,
publishing its status after every poll. ``/readyz`` names a stuck Kafka consumer (the
pricing producer's ranked-ids reader) under ``stuck_consumers`` without turning 503: the
producer keeps polling with the last ids it read. Exit status: ``EXIT_OK`` after a clean stop,
``EXIT_STARTUP_FAILURE`` when it cannot start (or crashes, or the CoinMarketCap plan
cannot pay for the configured depth), ``EXIT_AUTH_ERROR`` when the provider refuses the
API key or Kafka refuses the credentials or certificates (``KafkaAccessError``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TypeVar

import httpx
from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY, CollectorRegistry

from topcoins.kafka_access import use_idempotence
from topcoins.kafka_admin import TopicMismatchError, ensure_topics, wait_for_broker
from topcoins.kafka_security import KafkaAccessError, kafka_client_options
from topcoins.logs import configure_logging
from topcoins.ops import OpsServer
from topcoins.producers.budget import BudgetError, CreditPlan, plan_pricing
from topcoins.producers.coinmarketcap import CoinMarketCapClient
from topcoins.producers.credit_journal import CreditJournal, JournaledPacer
from topcoins.producers.cryptocompare import PAGE_SIZE, CryptoCompareClient
from topcoins.producers.errors import AuthError
from topcoins.producers.metrics import ProducerMetrics
from topcoins.producers.poller import Poller
from topcoins.producers.pricing import PricingSource
from topcoins.producers.publisher import Snapshot, SnapshotPublisher
from topcoins.producers.ranked_ids import RankedIdsReader
from topcoins.producers.ratelimit import Pacer, SlidingWindowLimiter, Window, plan_ranking
from topcoins.producers.retry import RetryPolicy
from topcoins.producers.status import StatusReporter
from topcoins.schemas.records import ProducerStatus
from topcoins.schemas.topics import TopicSpec
from topcoins.settings import ENV_DOCS, Settings
from topcoins.stuck import StuckConsumers
from topcoins.tracing import configure_tracing

__all__ = [
    "EXIT_AUTH_ERROR",
    "EXIT_OK",
    "EXIT_STARTUP_FAILURE",
    "run_pricing",
    "run_ranking",
    "serve",
]

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_STARTUP_FAILURE = 1
EXIT_AUTH_ERROR = 2
BROKER_WAIT_SECONDS = 60.0
PRICING_COMPONENT = "pricing-producer"
RANKING_COMPONENT = "ranking-producer"
# A call waits for our own limits up to one poll interval, and never less than this;
# a longer wait fails the poll at once (LocalLimitError), without calling.
MIN_MAX_WAIT_SECONDS = 60.0
# The real providers: an empty key is worth a warning only there (the emulator needs none).
_PROVIDER_URLS = frozenset(
    ENV_DOCS[name].default for name in ("cmc_base_url", "cryptocompare_base_url")
)

T = TypeVar("T")
Fetch = Callable[[], Awaitable[Snapshot]]
# (http client, stop event, metrics) -> an async context that yields the poll's fetch.
FetchOpener = Callable[
    [httpx.AsyncClient, asyncio.Event, ProducerMetrics], AbstractAsyncContextManager[Fetch]
]


@dataclass(frozen=True)
class ProducerJob:
    """What distinguishes the pricing producer from the ranking producer."""

    component: str
    provider: str
    base_url: str
    api_key: str = field(repr=False)
    key_env: str
    interval: float  # effective: after the credit budget and the rate limits
    ops_port: int
    topic: TopicSpec
    status_topic: TopicSpec
    topics: tuple[TopicSpec, ...]  # every topic ensured at start
    schedule: str  # one line for the start-up log: the interval and why
    schedule_fields: Mapping[str, object]
    credits_per_call: Mapping[str, int]
    open_fetch: FetchOpener
    # The pricing producer's credit ledger across restarts; it needs the status reporter.
    credit_journal: CreditJournal | None = None
    # The Kafka consumers the job reads with (the ranked-ids reader): /readyz names a stuck one.
    consumers: StuckConsumers = field(default_factory=StuckConsumers)


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
            yield PricingSource(
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
        interval=budget.interval,
        ops_port=settings.pricing_ops_port,
        topic=topics.prices,
        status_topic=topics.status,
        topics=(topics.prices, topics.status, *((topics.top,) if budget.quotes_refresh else ())),
        schedule=budget.describe(),
        schedule_fields=budget.log_fields(),
        credits_per_call=credits,
        open_fetch=open_fetch,
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

    limits = ", ".join(f"{w.limit}/{w.name}" for w in windows)
    return ProducerJob(
        component=RANKING_COMPONENT,
        provider=provider,
        base_url=settings.cryptocompare_base_url,
        api_key=settings.cryptocompare_api_key,
        key_env=ENV_DOCS["cryptocompare_api_key"].name,
        interval=pace.interval,
        ops_port=settings.ranking_ops_port,
        topic=topics.ranks,
        status_topic=topics.status,
        topics=(topics.ranks, topics.status),
        schedule=(
            f"polls every {pace.interval:.1f} s: {pace.pages} toplist pages per poll within "
            f"{limits}"
        ),
        schedule_fields=pace.log_fields(),
        credits_per_call={},
        open_fetch=open_fetch,
    )


def run_pricing(settings: Settings) -> int:
    """Run the CoinMarketCap pricing producer until stopped; return the exit status."""
    return _run(PRICING_COMPONENT, pricing_job, settings)


def run_ranking(settings: Settings) -> int:
    """Run the CryptoCompare ranking producer until stopped; return the exit status."""
    return _run(RANKING_COMPONENT, ranking_job, settings)


def _run(component: str, make_job: Callable[[Settings], ProducerJob], settings: Settings) -> int:
    configure_logging(component, settings.log_level, settings.secrets, settings.log_format)
    configure_tracing(component)  # off unless OTEL_* asks for it (topcoins.tracing)
    try:
        job = make_job(settings)
    except BudgetError as exc:
        logger.error(f"{component} cannot start: {exc}")
        return EXIT_STARTUP_FAILURE
    return asyncio.run(serve(job, settings))


async def serve(
    job: ProducerJob,
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    broker_wait_seconds: float = BROKER_WAIT_SECONDS,
    registry: CollectorRegistry = REGISTRY,
) -> int:
    """The whole producer lifecycle inside a running loop; returns the exit status.

    SIGTERM and SIGINT set ``stop``: the current poll finishes, Kafka is flushed, 0.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        return await _serve(job, settings, stop, broker_wait_seconds, registry)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


async def _serve(
    job: ProducerJob,
    settings: Settings,
    stop: asyncio.Event,
    broker_wait_seconds: float,
    registry: CollectorRegistry,
) -> int:
    logger.info(f"starting {job.component}", extra={"settings": settings.public_dict()})
    logger.info(f"{job.component} {job.schedule}", extra={"schedule": dict(job.schedule_fields)})
    if not job.api_key and job.base_url in _PROVIDER_URLS:
        logger.warning(f"{job.key_env} is empty: {job.provider} may refuse or throttle calls")
    try:
        prepared = await _unless_stopped(
            _prepare_kafka(settings, job.topics, broker_wait_seconds), stop
        )
        idempotence = await use_idempotence(settings) if prepared else False
    except KafkaAccessError as exc:
        logger.error(f"{job.component} cannot start: {exc}")
        return EXIT_AUTH_ERROR
    except (TimeoutError, KafkaError, OSError, TopicMismatchError) as exc:
        logger.error(f"{job.component} cannot start: {exc}")
        return EXIT_STARTUP_FAILURE
    if not prepared:
        logger.info(f"{job.component} stopped before it started")
        return EXIT_OK

    metrics = ProducerMetrics(job.provider, registry)
    metrics.poll_interval(job.interval)
    for call, credits in job.credits_per_call.items():
        metrics.credits_per_call(call, credits)
    publisher = SnapshotPublisher(
        settings.kafka_bootstrap_servers,
        job.component,
        enable_idempotence=idempotence,
        client_options=kafka_client_options(settings),
    )
    key = job.provider.encode()
    poller: Poller | None = None

    def is_ready() -> bool:
        return publisher.started and poller is not None and poller.ready

    async def publish(snapshot: Snapshot) -> int:
        return await publisher.publish(job.topic.name, key, snapshot)

    async def send_status(status: ProducerStatus) -> int:
        return await publisher.publish_status(job.status_topic.name, key, status)

    status = StatusReporter(
        provider=job.provider,
        component=job.component,
        interval=job.interval,
        send=send_status,
        metrics=metrics,
        secrets=settings.secrets,
    )
    try:
        if job.credit_journal is not None:
            job.credit_journal.reporter = status
            await job.credit_journal.recover()
        async with (
            OpsServer(
                settings.ops_host,
                job.ops_port,
                is_ready,
                registry,
                details=job.consumers.readyz_fields,
            ),
            publisher,
            httpx.AsyncClient(base_url=job.base_url, timeout=settings.http_timeout_seconds) as http,
            job.open_fetch(http, stop, metrics) as fetch,
        ):
            poller = Poller(
                provider=job.provider,
                fetch=fetch,
                publish=publish,
                interval=job.interval,
                stop=stop,
                metrics=metrics,
                retry=RetryPolicy(attempts=settings.producer_retry_attempts),
                status=status,
            )
            logger.info(f"{job.component} polling", extra={"topic": job.topic.name})
            await poller.run()
    except AuthError as exc:
        logger.error(f"{job.component} stopped: {exc}")
        return EXIT_AUTH_ERROR
    except (KafkaError, OSError) as exc:
        logger.error(f"{job.component} failed: {type(exc).__name__}: {exc}")
        return EXIT_STARTUP_FAILURE
    logger.info(f"{job.component} stopped cleanly")
    return EXIT_OK


async def _prepare_kafka(
    settings: Settings, topics: tuple[TopicSpec, ...], wait_seconds: float
) -> None:
    options = kafka_client_options(settings)
    servers = settings.kafka_bootstrap_servers
    await wait_for_broker(servers, timeout=wait_seconds, options=options)
    await ensure_topics(servers, topics, options=options)


async def _unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> bool:
    """Run ``work`` to completion (True), or cancel it when ``stop`` is set first (False)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        return False
    task.result()
    return True
