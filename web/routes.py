"""The HTTP routes: ``GET /`` (the top list) and the operator endpoints.

``GET /`` is a plain ASGI callable: it reads ``replica.view`` (never waits on Kafka),
looks up the prepared answer for ``(format, limit)`` in the view's cache and sends its
bytes. Bad input raises ``RequestError`` subclasses that ``errors.exception_handlers``
turn into JSON. ``middleware.TopListFastPath`` calls the same endpoint ahead of routing
for the successful case. The operator endpoints are ordinary Starlette request handlers.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from topcoins.web.encoding import iso_utc
from topcoins.web.errors import RETRY_AFTER_SECONDS, NoDataYet
from topcoins.web.metrics import CONTENT_TYPE_LATEST, WebMetrics
from topcoins.web.params import QueryParser, negotiate
from topcoins.web.rendered import RenderedView
from topcoins.web.replica import Replica
from topcoins.web.responses import (
    JSON_MEDIA_TYPE,
    JSONBody,
    PreparedResponse,
    error_response,
    etag_matches,
)
from topcoins.web.version import BuildInfo
from topcoins.web.view import TopListView

__all__ = ["OpsEndpoints", "Renderer", "TopListEndpoint", "build_routes"]


class Renderer:
    """The ``RenderedView`` of the replica's current view, replaced when the view changes."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self._rendered: RenderedView | None = None

    def current(self) -> RenderedView:
        """The current view's answers; raises ``NoDataYet`` before the first view."""
        view = self.replica.view
        rendered = self._rendered
        if rendered is not None and rendered.view is view:
            return rendered
        if view is None:
            raise NoDataYet()
        rendered = self._rendered = RenderedView(view)
        return rendered


class TopListEndpoint:
    """``GET /?limit=N&format=json|csv``: the top N assets, from prepared bytes."""

    def __init__(self, renderer: Renderer, parser: QueryParser) -> None:
        self.renderer = renderer
        self.parser = parser

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        prepared, not_modified = self.prepare(scope)
        await prepared.send(send, head=scope["method"] == "HEAD", not_modified=not_modified)

    def prepare(self, scope: Scope) -> tuple[PreparedResponse, bool]:
        """The answer for this request and whether it is a 304; raises ``RequestError``."""
        query = self.parser.parse(scope["query_string"])
        accept = if_none_match = None
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value
            elif name == b"if-none-match":
                if_none_match = value
        fmt = query.format or negotiate(accept)
        prepared = self.renderer.current().response(fmt, query.limit)
        not_modified = if_none_match is not None and _matches(if_none_match, prepared.etag)
        return prepared, not_modified


def _matches(if_none_match: bytes, etag: bytes) -> bool:
    # Fast exact match first; fall back to the full RFC 9110 comparison.
    return if_none_match == etag or etag_matches(if_none_match, etag)


class OpsEndpoints:
    """Health, readiness, version, metrics and match diagnostics."""

    def __init__(
        self, replica: Replica, renderer: Renderer, metrics: WebMetrics, build: BuildInfo
    ) -> None:
        self.replica = replica
        self.renderer = renderer
        self.metrics = metrics
        self.build = build

    async def healthz(self, request: Request) -> Response:
        """The process is alive."""
        return JSONBody({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """Ready when a view has arrived and the Kafka consumer is running."""
        view = self.replica.view
        running = self.replica.running
        if view is not None and running:
            return JSONBody({"status": "ready", **_view_summary(view)})
        reasons = []
        if view is None:
            reasons.append("no top list has been received from Kafka yet")
        if not running:
            reasons.append("the Kafka consumer is not running (connecting or reconnecting)")
        return error_response(
            503,
            "not_ready",
            "; ".join(reasons) + f"; retry in {RETRY_AFTER_SECONDS} seconds",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    async def version(self, request: Request) -> Response:
        """Package version, git commit and build time."""
        return JSONBody(self.build.as_dict())

    async def prometheus(self, request: Request) -> Response:
        """Prometheus text exposition."""
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def diagnostics(self, request: Request) -> Response:
        """Every ranked asset with its CoinMarketCap match rule, plus counts per rule."""
        body = self.renderer.current().diagnostics_body()
        return Response(body, media_type=JSON_MEDIA_TYPE, headers={"Cache-Control": "no-cache"})


def _view_summary(view: TopListView) -> dict[str, object]:
    return {
        "generation": view.generation,
        "total_ranked": view.total_ranked,
        "ranking_updated_at": iso_utc(view.ranking_updated_at),
    }


def build_routes(top_list: TopListEndpoint, ops: OpsEndpoints) -> list[BaseRoute]:
    """Every route of the web service; ``/`` first, as it is matched most often."""
    return [
        Route("/", top_list, methods=["GET"], name="top_list"),
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/readyz", ops.readyz, methods=["GET"]),
        Route("/version", ops.version, methods=["GET"]),
        Route("/metrics", ops.prometheus, methods=["GET"]),
        Route("/diagnostics", ops.diagnostics, methods=["GET"]),
    ]
