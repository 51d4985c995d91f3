"""Builds the stream worker's Faust app from settings: topics, tables, agents, metrics.

``build_worker(settings)`` returns the ``faust.App`` together with its parts (topics,
tables, agents, updater, metrics, readiness, progress) for tests and ``run_worker``.
Building registers the worker's Prometheus metrics on ``registry`` (the process-wide
default unless given), so build one worker per registry.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust
from prometheus_client import REGISTRY, CollectorRegistry

from topcoins.domain import AliasTable
from topcoins.settings import Settings
from topcoins.streams.agents import WorkerAgents, register_agents
from topcoins.streams.credentials import faust_credentials
from topcoins.streams.generations import DirectSend
from topcoins.streams.metrics import WorkerMetrics
from topcoins.streams.progress import AgentProgress
from topcoins.streams.readiness import WorkerReadiness
from topcoins.streams.tables import WorkerTables, declare_tables
from topcoins.streams.topics import WorkerTopics, declare_topics
from topcoins.streams.transport import FetchWaitTransport
from topcoins.streams.updater import TopListUpdater

__all__ = ["StreamWorker", "build_worker"]

# The worker's producer batch size: Faust's largest request (``producer_max_request_size``).
PRODUCER_BATCH_BYTES = 1_000_000


@dataclass(frozen=True)
class StreamWorker:
    """The Faust app and the parts it was built from."""

    app: faust.App
    topics: WorkerTopics
    tables: WorkerTables
    agents: WorkerAgents
    updater: TopListUpdater
    metrics: WorkerMetrics
    readiness: WorkerReadiness
    progress: AgentProgress


def build_worker(
    settings: Settings,
    *,
    aliases: AliasTable | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> StreamWorker:
    """Build the app and its parts; ``aliases`` defaults to the shipped ``aliases.json``."""
    app = faust.App(
        f"{settings.topic_prefix}-worker",
        broker=[f"kafka://{server}" for server in settings.kafka_servers],
        broker_credentials=faust_credentials(settings),
        # Tables live in memory and are rebuilt from their changelog topics on start
        # (python-rocksdict/rocksdb is not installed).
        store="memory://",
        datadir=settings.worker_data_dir,
        autodiscover=False,
        # Health and metrics come from our own OpsServer on WORKER_OPS_PORT.
        web_enabled=False,
        # WORKER_SESSION_TIMEOUT_SECONDS / WORKER_HEARTBEAT_SECONDS: 45 s / 3 s (Kafka's
        # client defaults) for real clusters. `topcoins dev` and the tests use 6 s / 1 s:
        # Tansu lets a consumer join its group in ~3 s only with a short session timeout.
        broker_session_timeout=settings.worker_session_timeout_seconds,
        broker_heartbeat_interval=settings.worker_heartbeat_seconds,
        consumer_auto_offset_reset="earliest",
        topic_replication_factor=settings.topic_replication_factor,
        topic_partitions=1,
        topic_disable_leader=True,
        key_serializer="raw",
        value_serializer="raw",
        # One generation (up to RANKING_DEPTH rows, ~250 B each) fits in one batch. With
        # Faust's 16 KiB batches each full batch waited for the broker's ack of the one
        # before, so writing 100 rows took 0.1-0.5 s (see benchmarks/freshness.py).
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
    )
    # Before any topic is declared (declaring one builds the transport): Faust's own
    # transport hard-codes a 1500 ms consumer fetch wait.
    app.transport = FetchWaitTransport(
        app.conf.broker_consumer, app, fetch_max_wait_ms=settings.consumer_fetch_wait_ms
    )
    topics = declare_topics(app, settings.topics)
    tables = declare_tables(app)
    metrics = WorkerMetrics(registry)
    updater = TopListUpdater(
        tables,
        DirectSend(topics.top),
        aliases if aliases is not None else AliasTable.load(),
        metrics,
    )
    inputs = {topics.ranks.get_topic_name(), topics.prices.get_topic_name()}
    progress = AgentProgress(app, inputs, metrics)
    agents = register_agents(app, topics, updater, progress)
    readiness = WorkerReadiness(app, inputs)
    return StreamWorker(app, topics, tables, agents, updater, metrics, readiness, progress)
