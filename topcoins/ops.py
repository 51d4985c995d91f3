"""A small health and metrics HTTP server for the processes that have no web app of their own.

Serves ``/healthz`` (alive), ``/readyz`` (the component's own readiness check, plus the
fields ``details()`` adds, such as ``stuck_consumers``) and ``/metrics`` (Prometheus text
format) on its own port, inside the caller's event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from topcoins.lifecycle import AsyncLifecycle

__all__ = ["OpsServer"]

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class OpsServer(AsyncLifecycle):
    """``async with OpsServer(host, port, is_ready):`` serves health and metrics until the
    block ends."""

    host: str
    port: int
    is_ready: Callable[[], bool]
    registry: CollectorRegistry = REGISTRY
    details: Callable[[], Mapping[str, object]] | None = None
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)

    async def _start(self) -> None:
        """Bind the port and start serving."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.host, self.port).start()
        self._runner = runner
        logger.info("ops server listening", extra={"host": self.host, "port": self.port})

    async def _stop(self) -> None:
        """Stop serving."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        ready = self.is_ready()
        extra = dict(self.details()) if self.details is not None else {}
        return web.json_response(
            {"status": "ready" if ready else "not ready", **extra}, status=200 if ready else 503
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
