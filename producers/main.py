"""Entry points of the two producer processes: ``run_pricing`` and ``run_ranking``.

Each one logs its settings, waits for Kafka, creates its topic, serves health and
metrics, then polls its provider until SIGTERM/SIGINT. Exit status: ``EXIT_OK`` after a
clean stop, ``EXIT_STARTUP_FAILURE`` when it cannot start (or crashes), ``EXIT_AUTH_ERROR``
when the provider refuses the API key.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY, CollectorRegistry

from topcoins.kafka_admin import TopicMismatchError, ensure_topics, wait_for_broker
from topcoins.logs import configure_logging
from topcoins.ops import OpsServer
from topcoins.producers.coinmarketcap import CoinMarketCapClient
from topcoins.producers.cryptocompare import CryptoCompareClient
from topcoins.producers.errors import AuthError
from topcoins.producers.metrics import ProducerMetrics
from topcoins.producers.poller import Poller
from topcoins.producers.publisher import Snapshot, SnapshotPublisher
from topcoins.producers.retry import RetryPolicy
from topcoins.schemas.topics import Topics, TopicSpec
from topcoins.settings import ENV_DOCS, Settings

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

T = TypeVar("T")
FetchFactory = Callable[[httpx.AsyncClient], Callable[[], Awaitable[Snapshot]]]


@dataclass(frozen=True)
class ProducerJob:
    """What distinguishes the pricing producer from the ranking producer."""

    component: str
    provider: str
    base_url: str
    api_key: str
    key_env: str
    interval: float
    ops_port: int
    topic: TopicSpec
    make_fetch: FetchFactory


def pricing_job(settings: Settings) -> ProducerJob:
    """CoinMarketCap listings -> the ``.prices`` topic."""

    def make_fetch(http: httpx.AsyncClient) -> Callable[[], Awaitable[Snapshot]]:
        client = CoinMarketCapClient(http, settings.cmc_api_key)
        return lambda: client.fetch_listings(settings.pricing_depth)

    return ProducerJob(
        component="pricing-producer",
        provider=CoinMarketCapClient.provider,
        base_url=settings.cmc_base_url,
        api_key=settings.cmc_api_key,
        key_env=ENV_DOCS["cmc_api_key"].name,
        interval=settings.pricing_poll_seconds,
        ops_port=settings.pricing_ops_port,
        topic=Topics.for_prefix(settings.topic_prefix).prices,
        make_fetch=make_fetch,
    )


def ranking_job(settings: Settings) -> ProducerJob:
    """CryptoCompare toplist by 24h total volume -> the ``.ranks`` topic."""

    def make_fetch(http: httpx.AsyncClient) -> Callable[[], Awaitable[Snapshot]]:
        client = CryptoCompareClient(http, settings.cryptocompare_api_key)
        return lambda: client.fetch_ranking(settings.ranking_depth)

    return ProducerJob(
        component="ranking-producer",
        provider=CryptoCompareClient.provider,
        base_url=settings.cryptocompare_base_url,
        api_key=settings.cryptocompare_api_key,
        key_env=ENV_DOCS["cryptocompare_api_key"].name,
        interval=settings.ranking_poll_seconds,
        ops_port=settings.ranking_ops_port,
        topic=Topics.for_prefix(settings.topic_prefix).ranks,
        make_fetch=make_fetch,
    )


def run_pricing(settings: Settings) -> int:
    """Run the CoinMarketCap pricing producer until stopped; return the exit status."""
    return _run(pricing_job(settings), settings)


def run_ranking(settings: Settings) -> int:
    """Run the CryptoCompare ranking producer until stopped; return the exit status."""
    return _run(ranking_job(settings), settings)


def _run(job: ProducerJob, settings: Settings) -> int:
    configure_logging(job.component, settings.log_level, settings.secrets)
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
    if not job.api_key:
        logger.warning(f"{job.key_env} is empty: {job.provider} may refuse or throttle calls")
    try:
        prepared = await _unless_stopped(
            _prepare_kafka(settings.kafka_bootstrap_servers, job.topic, broker_wait_seconds), stop
        )
    except (TimeoutError, KafkaError, OSError, TopicMismatchError) as exc:
        logger.error(f"{job.component} cannot start: {exc}")
        return EXIT_STARTUP_FAILURE
    if not prepared:
        logger.info(f"{job.component} stopped before it started")
        return EXIT_OK

    metrics = ProducerMetrics(job.provider, registry)
    publisher = SnapshotPublisher(settings.kafka_bootstrap_servers, job.component)
    key = job.provider.encode()
    poller: Poller | None = None

    def is_ready() -> bool:
        return publisher.started and poller is not None and poller.ready

    async def publish(snapshot: Snapshot) -> int:
        return await publisher.publish(job.topic.name, key, snapshot)

    try:
        async with (
            OpsServer("0.0.0.0", job.ops_port, is_ready, registry),
            publisher,
            httpx.AsyncClient(base_url=job.base_url, timeout=settings.http_timeout_seconds) as http,
        ):
            poller = Poller(
                provider=job.provider,
                fetch=job.make_fetch(http),
                publish=publish,
                interval=job.interval,
                stop=stop,
                metrics=metrics,
                retry=RetryPolicy(attempts=settings.producer_retry_attempts),
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


async def _prepare_kafka(servers: str, topic: TopicSpec, wait_seconds: float) -> None:
    await wait_for_broker(servers, timeout=wait_seconds)
    await ensure_topics(servers, (topic,))


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
