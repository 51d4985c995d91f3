"""``run_web(settings)``: serve the web app with uvicorn until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator

import uvicorn
from starlette.types import ASGIApp

from topcoins.kafka_access import watch_access
from topcoins.kafka_admin import report_topic_durability
from topcoins.kafka_security import KafkaAccessError, kafka_client_options
from topcoins.logs import configure_logging
from topcoins.settings import Settings
from topcoins.tracing import configure_tracing
from topcoins.web.app import create_app
from topcoins.web.serving import fastest_server_options

__all__ = ["run_web", "server_config"]

logger = logging.getLogger(__name__)

EXIT_ACCESS_ERROR = 2  # Kafka refused our credentials or certificates


class _Server(uvicorn.Server):
    """uvicorn's server, except that SIGINT/SIGTERM only stop it, and that shutting down
    first calls ``before_shutdown`` (``run_web`` closes the open ``/stream`` streams there).

    Stock uvicorn re-raises the signal after a graceful shutdown, so the process would die
    by the signal instead of returning from ``run_web`` with status 0; and its graceful
    shutdown waits for every open response, so endless streams would hold it up until
    ``timeout_graceful_shutdown``.
    """

    def __init__(
        self, config: uvicorn.Config, before_shutdown: Callable[[], None] = lambda: None
    ) -> None:
        super().__init__(config)
        self.before_shutdown = before_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.before_shutdown()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        stop_signals = (signal.SIGINT, signal.SIGTERM)
        for sig in stop_signals:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in stop_signals:
                loop.remove_signal_handler(sig)


def server_config(app: ASGIApp, settings: Settings, *, access_log: bool = False) -> uvicorn.Config:
    """How ``run_web`` serves ``app`` (``benchmarks/web_hot_path.py`` serves its baseline so)."""
    return uvicorn.Config(
        app,
        host=settings.web_host,
        port=settings.web_port,
        log_config=None,
        access_log=access_log,
        lifespan="on",
        **fastest_server_options(),
        # Streams have their own budget (WEB_STREAM_MAX, answered 503 by /stream itself),
        # so that open streams never take the connections of other requests.
        limit_concurrency=settings.web_limit_concurrency + settings.web_stream_max,
        timeout_graceful_shutdown=10,
    )


def run_web(settings: Settings, *, access_log: bool = False) -> int:
    """Serve on ``settings.web_host:web_port``; return 0 after a clean stop, 1 on failure,
    2 when Kafka refuses the credentials or certificates (the reason names the setting).

    Logs are JSON lines (``topcoins.logs``); uvicorn's own logging config is disabled so it
    cannot replace our handlers. The access log is off by default (requests are counted in
    ``/metrics``); ``access_log=True`` writes one JSON line per request.
    """
    configure_logging("web", settings.log_level, settings.secrets, settings.log_format)
    configure_tracing("web")  # off unless OTEL_* asks for it (topcoins.tracing)
    logger.info("web starting", extra={"settings": settings.public_dict()})
    refused: list[KafkaAccessError] = []
    try:
        app = create_app(settings)
        config = server_config(app, settings, access_log=access_log)
        server = _Server(config, before_shutdown=app.state.stream_hub.close)
        with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
            runner.run(_serve_while_kafka_accepts(server, settings, refused))
    except KafkaAccessError as exc:  # the settings themselves (e.g. an unreadable CA file)
        refused.append(exc)
    except SystemExit as exc:  # uvicorn exits when it cannot bind or start the app
        logger.error("web failed to start; see the errors above", extra={"exit_code": exc.code})
        return 1
    if refused:
        logger.error(f"web stopped: {refused[0]}")
        return EXIT_ACCESS_ERROR
    if not server.started:
        logger.error("web failed to start; see the errors above")
        return 1
    logger.info("web stopped")
    return 0


async def _serve_while_kafka_accepts(
    server: uvicorn.Server, settings: Settings, refused: list[KafkaAccessError]
) -> None:
    """``server.serve()``, stopped early when Kafka refuses the credentials or certificates
    (a replica would otherwise retry forever, serving 503)."""

    async def watch() -> None:
        try:
            await watch_access(settings)
        except KafkaAccessError as exc:
            refused.append(exc)
            server.should_exit = True
            return
        try:  # the topics it reads: other durability than the contract is worth a warning
            await report_topic_durability(
                settings.kafka_servers,
                settings.topics.all(),
                options=kafka_client_options(settings),
            )
        except Exception as exc:  # a report only: never a reason to stop serving
            logger.warning("cannot check the topics' durability", extra={"error": repr(exc)})

    watcher = asyncio.create_task(watch())
    try:
        await server.serve()
    finally:
        watcher.cancel()
