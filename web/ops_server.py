"""``OpsHTTPServer``: the web service's operator endpoints on a port of their own.

With ``WEB_OPS_PORT`` set, ``/metrics`` and ``/diagnostics`` leave the public port and are
served here (with ``/healthz`` and ``/readyz``), so the public Service exposes only what
users need. It is a second uvicorn server inside the web app's event loop, started and
stopped by the app's lifespan; the socket is bound in ``start()``, so a port in use fails
the start with an ``OSError`` that names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from topcoins.lifecycle import AsyncLifecycle

__all__ = ["OpsHTTPServer"]

logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves the signals to the main one."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class OpsHTTPServer(AsyncLifecycle):
    """``async with OpsHTTPServer(app, host, port):`` serves ``app`` until the block ends."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def _start(self) -> None:
        """Bind the port and start serving."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            detail = f"cannot bind WEB_OPS_PORT {self.host}:{self.port}: {exc.strerror}"
            raise OSError(exc.errno, detail) from exc
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=5
        )
        server = self._server = _Server(config)
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not self._task.done():
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()  # raises why it stopped
        logger.info("web ops server listening", extra={"host": self.host, "port": self.port})

    async def _stop(self) -> None:
        """Stop serving."""
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        server.should_exit = True
        await task
