"""The ASGI middleware of the web app that counts requests.

Order in ``create_app`` (outermost first): Starlette's ``ServerErrorMiddleware``,
``RequestMetricsMiddleware``, Starlette's ``ExceptionMiddleware``, the router. A live
``GET /`` answered by ``fast_path.TopListFastPath`` never enters this stack and is
counted there.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from topcoins.web.metrics import RequestCounter

__all__ = ["RequestMetricsMiddleware"]


class RequestMetricsMiddleware:
    """Counts every HTTP request by route template (``unmatched`` for 404s) and status, and
    times it by route."""

    def __init__(self, app: ASGIApp, counter: RequestCounter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route: Any = scope.get("route")
            route_path = route.path if route is not None else "unmatched"
            self.counter.inc(route_path, status, time.perf_counter() - started)
