"""``run_web(settings)``: serve the web app with uvicorn until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

import uvicorn

from topcoins.logs import configure_logging
from topcoins.settings import Settings
from topcoins.web.app import create_app

__all__ = ["run_web"]

logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server, except that SIGINT/SIGTERM only stop it.

    Stock uvicorn re-raises the signal after a graceful shutdown, so the process would die
    by the signal instead of returning from ``run_web`` with status 0.
    """

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


def run_web(settings: Settings, *, access_log: bool = False) -> int:
    """Serve on ``settings.web_host:web_port``; return 0 after a clean stop, 1 on failure.

    Logs are JSON lines (``topcoins.logs``); uvicorn's own logging config is disabled so it
    cannot replace our handlers. The access log is off by default (requests are counted in
    ``/metrics``); ``access_log=True`` writes one JSON line per request.
    """
    configure_logging("web", settings.log_level, settings.secrets)
    logger.info("web starting", extra={"settings": settings.public_dict()})
    config = uvicorn.Config(
        create_app(settings),
        host=settings.web_host,
        port=settings.web_port,
        log_config=None,
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    server = _Server(config)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot bind or start the app
        logger.error("web failed to start; see the errors above", extra={"exit_code": exc.code})
        return 1
    if not server.started:
        logger.error("web failed to start; see the errors above")
        return 1
    logger.info("web stopped")
    return 0
