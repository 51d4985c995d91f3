"""Runs the stream worker process: ``topcoins worker``.

Start-up, in order: JSON logging (Faust's and aiokafka's too), wait for the broker, create
the three topics with their declared settings, build the Faust app, then run it under a
``faust.Worker`` together with our health/metrics server. The Faust worker stops on SIGTERM
and SIGINT; the ops server stops with it (it is one of the worker's services). A start-up
failure exits with status 1 and a one-line reason; status 2 when Kafka refuses the
credentials or certificates (the reason names the setting to fix).

Test-only: ``TOPCOINS_TEST_KILL_AFTER_ROWS=g:k`` makes the worker exit with status 137
once the first ``k`` rows of the ``g``-th generation it publishes are delivered, and
``row:SYMBOL`` once that symbol's row is (``streams/faults.py``), so that a test kills it
in the middle of a generation at an exact point. Never set it in a deployment.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any

import faust
import mode
from aiokafka.errors import KafkaError

from topcoins.domain import DomainError
from topcoins.kafka_admin import TopicMismatchError, ensure_topics, wait_for_broker
from topcoins.kafka_security import KafkaAccessError, kafka_client_options
from topcoins.logs import configure_logging
from topcoins.ops import OpsServer
from topcoins.settings import Settings
from topcoins.streams.app import StreamWorker, build_worker
from topcoins.streams.errors import StreamsError
from topcoins.streams.faults import Fault, parse_fault
from topcoins.streams.output_keys import live_row_keys
from topcoins.tracing import configure_tracing

__all__ = ["OpsService", "armed_fault", "ops_server", "run_worker"]

logger = logging.getLogger(__name__)

COMPONENT = "stream-worker"
BROKER_WAIT_SECONDS = 60.0
EXIT_ACCESS_ERROR = 2  # Kafka refused our credentials or certificates
TEST_FAULT_VARIABLE = "TOPCOINS_TEST_KILL_AFTER_ROWS"  # test-only, see the module docstring


class OpsService(mode.Service):
    """Runs an ``OpsServer`` as a service of the Faust worker: starts and stops with it."""

    def __init__(self, server: OpsServer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.server = server

    async def on_start(self) -> None:
        await self.server.start()

    async def on_stop(self) -> None:
        await self.server.stop()


async def prepare_broker(settings: Settings) -> None:
    """Wait until the broker answers, then create missing topics with their contract."""
    options = kafka_client_options(settings)
    await wait_for_broker(
        settings.kafka_bootstrap_servers, timeout=BROKER_WAIT_SECONDS, options=options
    )
    await ensure_topics(settings.kafka_bootstrap_servers, settings.topics.all(), options=options)


def run_worker(settings: Settings) -> int:
    """Run the stream worker until SIGTERM/SIGINT; return the process exit status."""
    configure_logging(COMPONENT, settings.log_level, settings.secrets, settings.log_format)
    configure_tracing(COMPONENT)  # off unless OTEL_* asks for it (topcoins.tracing)
    logger.info("stream worker starting", extra={"settings": settings.public_dict()})
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(prepare_broker(settings))
        parts = build_worker(settings)
        parts.updater.writer.fault = armed_fault(os.environ)
        parts.updater.writer.expect_rows(
            loop.run_until_complete(
                live_row_keys(
                    settings.kafka_bootstrap_servers,
                    settings.topics.top.name,
                    client_options=kafka_client_options(settings),
                )
            )
        )
    except KafkaAccessError as exc:
        logger.error("stream worker cannot start: %s", exc)
        loop.close()
        asyncio.set_event_loop(None)
        return EXIT_ACCESS_ERROR
    except (
        TimeoutError,
        TopicMismatchError,
        KafkaError,
        OSError,
        StreamsError,
        DomainError,  # a bad alias table
        ValueError,
    ) as exc:
        logger.error("stream worker cannot start: %s", exc)
        loop.close()
        asyncio.set_event_loop(None)
        return 1
    ops = OpsService(ops_server(settings, parts))
    worker = faust.Worker(
        parts.app,
        ops,
        loop=loop,
        loglevel=settings.log_level,
        quiet=True,  # no banner on stdout
        override_logging=False,  # keep our JSON handler (configure_logging above)
        redirect_stdouts=False,
    )
    worker.spinner = None  # log "Ready" instead of drawing a console spinner
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return _exit_status(exc.code)
    return 0


def ops_server(settings: Settings, parts: StreamWorker) -> OpsServer:
    """The worker's health and metrics server: ``/readyz`` follows ``WorkerReadiness`` and
    names stuck agents under ``stuck_consumers`` (which leave readiness as it is)."""
    return OpsServer(
        settings.ops_host,
        settings.worker_ops_port,
        parts.readiness.is_ready,
        details=parts.progress.readyz_fields,
    )


def armed_fault(environ: Mapping[str, str]) -> Fault | None:
    """The test-only fault ``TOPCOINS_TEST_KILL_AFTER_ROWS`` asks for, if any;
    ``ValueError`` (naming the variable) when it is malformed."""
    text = environ.get(TEST_FAULT_VARIABLE, "").strip()
    if not text:
        return None
    try:
        fault = parse_fault(text)
    except ValueError as exc:
        raise ValueError(f"{TEST_FAULT_VARIABLE}: {exc}") from None
    logger.warning("test fault armed", extra={"fault": repr(fault)})
    return fault


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1
