"""Entry points of the two producer processes: ``run_pricing`` and ``run_ranking`` run the
job (``jobs.py``) of each.

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
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY, CollectorRegistry

from topcoins.kafka_access import use_idempotence
from topcoins.kafka_admin import TopicMismatchError, ensure_topics, wait_for_broker
from topcoins.kafka_security import KafkaAccessError, kafka_client_options
from topcoins.logs import configure_logging
from topcoins.ops import OpsServer
from topcoins.producers.budget import BudgetError
from topcoins.producers.errors import AuthError
from topcoins.producers.jobs import (
    PRICING_COMPONENT,
    RANKING_COMPONENT,
    ProducerJob,
    pricing_job,
    ranking_job,
)
from topcoins.producers.metrics import ProducerMetrics
from topcoins.producers.poller import Poller
from topcoins.producers.publisher import SnapshotPublisher
from topcoins.producers.retry import RetryPolicy
from topcoins.producers.status import StatusReporter
from topcoins.schemas.records import ProducerStatus, Snapshot
from topcoins.schemas.topics import TopicSpec
from topcoins.settings import ENV_DOCS, Settings
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
# The real providers: an empty key is worth a warning only there (the emulator needs none).
_PROVIDER_URLS = frozenset(
    ENV_DOCS[name].default for name in ("cmc_base_url", "cryptocompare_base_url")
)

T = TypeVar("T")


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
