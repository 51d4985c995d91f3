"""Runs the stream worker process: ``topcoins worker``.

Start-up, in order: JSON logging (Faust's and aiokafka's too), wait for the broker, create
the three topics with their declared settings, build the Faust app, then run it under a
``faust.Worker`` together with our health/metrics server. The Faust worker stops on SIGTERM
and SIGINT; the ops server stops with it (it is one of the worker's services). A start-up
failure exits with status 1 and a one-line reason.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
import mode
from aiokafka.errors import KafkaError

from topcoins.kafka_admin import TopicMismatchError, ensure_topics, wait_for_broker
from topcoins.logs import configure_logging
from topcoins.ops import OpsServer
from topcoins.settings import Settings
from topcoins.streams.app import build_worker
from topcoins.streams.errors import StreamsError
from topcoins.streams.output_keys import live_row_keys

__all__ = ["OpsService", "run_worker"]

logger = logging.getLogger(__name__)

COMPONENT = "stream-worker"
# The ops server must be reachable from outside the container (probes, scraping).
OPS_HOST = "0.0.0.0"
BROKER_WAIT_SECONDS = 60.0


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
    await wait_for_broker(settings.kafka_bootstrap_servers, timeout=BROKER_WAIT_SECONDS)
    await ensure_topics(settings.kafka_bootstrap_servers, settings.topics.all())


def run_worker(settings: Settings) -> int:
    """Run the stream worker until SIGTERM/SIGINT; return the process exit status."""
    configure_logging(COMPONENT, settings.log_level, settings.secrets)
    logger.info("stream worker starting", extra={"settings": settings.public_dict()})
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(prepare_broker(settings))
        parts = build_worker(settings)
        parts.updater.expect_rows(
            loop.run_until_complete(
                live_row_keys(settings.kafka_bootstrap_servers, settings.topics.top.name)
            )
        )
    except (TimeoutError, TopicMismatchError, KafkaError, OSError, StreamsError) as exc:
        logger.error("stream worker cannot start: %s", exc)
        loop.close()
        asyncio.set_event_loop(None)
        return 1
    ops = OpsService(OpsServer(OPS_HOST, settings.worker_ops_port, parts.readiness.is_ready))
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


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1
