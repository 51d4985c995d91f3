"""The two ASGI middlewares of the web app: request counting and the ``GET /`` fast path.

Order in ``create_app`` (outermost first): Starlette's ``ServerErrorMiddleware``,
``TopListFastPath``, ``RequestMetricsMiddleware``, Starlette's ``ExceptionMiddleware``,
the router.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from topcoins.web.errors import RequestError
from topcoins.web.metrics import RequestCounter
from topcoins.web.routes import TopListEndpoint

__all__ = ["RequestMetricsMiddleware", "TopListFastPath"]

_GET_OR_HEAD = frozenset({"GET", "HEAD"})


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


class TopListFastPath:
    """Answers a successful live ``GET /`` or ``HEAD /`` before routing, from prepared bytes.

    It runs the routed ``TopListEndpoint``'s own ``prepare_live``; when that raises a
    ``RequestError`` (bad parameters, no data yet) nothing has been sent, and the request
    continues down the normal stack, where the same endpoint raises it again and the
    exception handlers write the JSON error. A query with ``at`` (the list at a past
    moment: ``prepare_live`` returns None) goes down the normal stack too. So both paths
    give the same answers; this one only skips Starlette's routing and exception wrappers
    (see benchmarks/web_hot_path.py).
    """

    def __init__(self, app: ASGIApp, endpoint: TopListEndpoint, counter: RequestCounter) -> None:
        self.app = app
        self.endpoint = endpoint
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == "/"
            and scope["method"] in _GET_OR_HEAD
            and not scope.get("root_path")
        ):
            started = time.perf_counter()
            try:
                answer = self.endpoint.prepare_live(scope)
            except RequestError:
                answer = None  # answered by the routed endpoint and the exception handlers
            except Exception:
                self.counter.inc("/", 500)
                raise
            if answer is not None:
                prepared, not_modified = answer
                await prepared.send(send, head=scope["method"] == "HEAD", not_modified=not_modified)
                status = 304 if not_modified else prepared.status
                self.counter.inc("/", status, time.perf_counter() - started)
                return
        await self.app(scope, receive, send)
