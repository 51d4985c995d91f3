"""The HTTP routes: ``GET /`` (the top list) and the operator endpoints.

``GET /`` is a plain ASGI callable. For the live list it reads ``replica.view`` and
``replica.statuses`` (never waits on Kafka), takes the current second's ``Freshness``,
looks up the prepared answer for ``(format, limit)`` in the view's cache and sends its
bytes. With ``at`` it asks ``history.HistoricalLists`` for the list of that moment
instead (this one waits on Kafka, and never touches the live cache). Bad input raises
``RequestError`` subclasses that ``errors.exception_handlers`` turn into JSON.
``fast_path.TopListFastPath`` answers successful live requests ahead of Starlette with
the same parser, negotiation and ``Renderer``; requests with ``at`` and errors go down the
routed stack. The operator
endpoints are ordinary Starlette request handlers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from topcoins.formats import iso_utc
from topcoins.schemas.records import ProducerStatus
from topcoins.web.dashboard import DASHBOARD_PATH, dashboard
from topcoins.web.errors import RETRY_AFTER_SECONDS, NoDataYet
from topcoins.web.freshness import Freshness, FreshnessClock, SourceFreshness
from topcoins.web.history import HistoricalLists
from topcoins.web.metrics import CONTENT_TYPE_LATEST, WebMetrics
from topcoins.web.params import Format, QueryParser, TopListQuery, negotiate
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

__all__ = [
    "OpsEndpoints",
    "Renderer",
    "TopListEndpoint",
    "build_ops_routes",
    "build_routes",
    "is_not_modified",
    "negotiation_headers",
]


class Renderer:
    """The ``RenderedView`` of the replica's current view, replaced when the view changes,
    and the ``Freshness`` of that view for the current second."""

    def __init__(self, replica: Replica, clock: FreshnessClock) -> None:
        self.replica = replica
        self.clock = clock
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

    def response(self, fmt: Format, limit: int) -> PreparedResponse:
        """The current answer for ``(fmt, limit)``; raises ``NoDataYet`` before the first view."""
        rendered = self.current()
        freshness = self.clock.current(rendered.view, self.replica.statuses)
        return rendered.response(fmt, limit, freshness)

    def freshness(self) -> Freshness:
        """The current view's freshness (every source stale when there is no view)."""
        return self.clock.current(self.replica.view, self.replica.statuses)


class TopListEndpoint:
    """``GET /?limit=N&format=json|csv[&at=time]``: the top N assets, live from prepared
    bytes, or as they were at ``at``."""

    def __init__(self, renderer: Renderer, parser: QueryParser, history: HistoricalLists) -> None:
        self.renderer = renderer
        self.parser = parser
        self.history = history

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = self.prepare_live(scope)
        if answer is None:
            answer = await self.prepare_historical(scope)
        prepared, not_modified = answer
        await prepared.send(send, head=scope["method"] == "HEAD", not_modified=not_modified)

    def prepare_live(self, scope: Scope) -> tuple[PreparedResponse, bool] | None:
        """The live answer for this request and whether it is a 304; None when the query
        has ``at`` (``prepare_historical`` answers those); raises ``RequestError``."""
        query = self.parser.parse(scope["query_string"])
        if query.at is not None:
            return None
        accept, if_none_match = negotiation_headers(scope)
        fmt = query.format or negotiate(accept)
        prepared = self.renderer.response(fmt, query.limit)
        return prepared, is_not_modified(if_none_match, prepared.etag)

    async def prepare_historical(
        self, scope: Scope, query: TopListQuery | None = None
    ) -> tuple[PreparedResponse, bool]:
        """The answer for a query with ``at`` (``query``: the request's, already parsed)
        and whether it is a 304 (reads Kafka); raises ``RequestError``."""
        query = query or self.parser.parse(scope["query_string"])
        assert query.at is not None, "a live query: use prepare_live"
        headers = dict(scope["headers"])
        fmt = query.format or negotiate(headers.get(b"accept"))
        prepared = await self.history.response(
            query.at, fmt, query.limit, traceparent=headers.get(b"traceparent")
        )
        return prepared, is_not_modified(headers.get(b"if-none-match"), prepared.etag)


def negotiation_headers(scope: Scope) -> tuple[bytes | None, bytes | None]:
    """The request's ``Accept`` and ``If-None-Match`` values (None when absent)."""
    accept = if_none_match = None
    for name, value in scope["headers"]:
        if name == b"accept":
            accept = value
        elif name == b"if-none-match":
            if_none_match = value
    return accept, if_none_match


def is_not_modified(if_none_match: bytes | None, etag: bytes) -> bool:
    """Whether ``If-None-Match`` names ``etag``: an exact match first, then the full
    RFC 9110 comparison."""
    return if_none_match is not None and (
        if_none_match == etag or etag_matches(if_none_match, etag)
    )


@dataclass(frozen=True, eq=False)
class OpsEndpoints:
    """Health, readiness, status, version, metrics and match diagnostics."""

    replica: Replica
    renderer: Renderer
    metrics: WebMetrics
    build: BuildInfo

    async def healthz(self, request: Request) -> Response:
        """The process is alive."""
        return JSONBody({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """Ready once the replica holds the full current list; it stays ready from then on.

        Stale data and a reconnecting Kafka consumer do not make it unready: the replica
        keeps serving its list (flagged stale in ``meta`` and headers) rather than have
        Kubernetes stop routing to every replica at once during an outage. A stuck consumer
        is named in ``stuck_consumers`` (topic -> reason) either way.
        """
        view = self.replica.view
        running = self.replica.running
        stuck = _stuck(self.replica)
        if view is not None and self.replica.caught_up:
            freshness = self.renderer.freshness()
            return JSONBody(
                {
                    "status": "ready",
                    **_view_summary(view),
                    "stale": freshness.stale,
                    "stale_sources": [str(source) for source in freshness.stale_sources],
                    "consumer_running": running,
                    "stuck_consumers": stuck,
                },
                headers={"Cache-Control": "no-cache"},
            )
        reasons = []
        if view is None:
            reasons.append("no top list has been received from Kafka yet")
        else:
            reasons.append("still reading the top topic up to its end (catching up)")
        if not running:
            reasons.append("the Kafka consumer is not running (connecting or reconnecting)")
        reasons += [
            f"the consumer of {topic} is stuck ({reason})" for topic, reason in stuck.items()
        ]
        return error_response(
            503,
            "not_ready",
            "; ".join(reasons) + f"; retry in {RETRY_AFTER_SECONDS} seconds",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
            {"stuck_consumers": stuck} if stuck else None,
        )

    async def status(self, request: Request) -> Response:
        """Per provider: its latest reported poll, and the age and staleness of its served data."""
        view = self.replica.view
        freshness = self.renderer.freshness()
        statuses = self.replica.statuses
        served = None
        if view is not None:
            served = {
                "generation": view.generation,
                "ranking_snapshot_id": view.ranking_snapshot_id,
                "pricing_snapshot_id": view.pricing_snapshot_id,
                "ranking_updated_at": iso_utc(view.ranking_updated_at),
                "prices_updated_at": iso_utc(view.prices_updated_at),
            }
        body = {
            "stale": freshness.stale,
            "stale_sources": [str(source) for source in freshness.stale_sources],
            "served": served,
            "replica": {
                "caught_up": self.replica.caught_up,
                "consumer_running": self.replica.running,
                "stuck_consumers": _stuck(self.replica),
            },
            "sources": {
                item.source.provider: _source_status(item, statuses.get(item.source.provider))
                for item in freshness.sources
            },
        }
        return JSONBody(body, headers={"Cache-Control": "no-cache"})

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


# A provider's own report in GET /status, in this order; every field null without one.
_REPORTED = (
    "component",
    "poll_interval_seconds",
    "last_attempt_at",
    "last_success_at",
    "last_snapshot_id",
    "last_error",
    "last_error_kind",
    "last_error_at",
    "consecutive_failures",
)


def _source_status(item: SourceFreshness, status: ProducerStatus | None) -> dict[str, object]:
    reported: dict[str, object] = dict.fromkeys(_REPORTED)
    state = "unknown"
    if status is not None:
        state = "failing" if status.consecutive_failures > 0 else "ok"
        reported = {
            "component": status.component,
            "poll_interval_seconds": _finite(status.poll_interval_seconds),
            "last_attempt_at": iso_utc(status.last_attempt_at),
            "last_success_at": iso_utc(status.last_success_at),
            "last_snapshot_id": status.last_snapshot_id,
            "last_error": status.last_error,
            "last_error_kind": status.last_error_kind,
            "last_error_at": iso_utc(status.last_error_at),
            "consecutive_failures": status.consecutive_failures,
        }
    return {
        "provides": str(item.source),
        "status": state,
        **reported,
        "served_fetched_at": iso_utc(item.fetched_at),
        "age_seconds": item.age_seconds,
        "stale_after_seconds": item.stale_after_seconds,
        "stale": item.stale,
    }


def _stuck(replica: Replica) -> dict[str, str]:
    """Topic -> reason, for every consumer of the replica that is stuck."""
    return {topic: reason for topic, reason in replica.consumers.items() if reason is not None}


def _finite(value: float) -> float | None:
    # JSON has no NaN or infinity; a producer's nonsense interval is reported as unknown.
    return value if math.isfinite(value) else None


def _view_summary(view: TopListView) -> dict[str, object]:
    return {
        "generation": view.generation,
        "total_ranked": view.total_ranked,
        "ranking_updated_at": iso_utc(view.ranking_updated_at),
    }


def build_routes(
    top_list: TopListEndpoint,
    ops: OpsEndpoints,
    *,
    operator: bool = True,
    stream: ASGIApp | None = None,
) -> list[BaseRoute]:
    """Every route of the public port; ``/`` first, as it is matched most often.
    ``operator=False`` leaves out ``/metrics`` and ``/diagnostics`` (served on the ops
    port, ``build_ops_routes``); ``stream`` serves ``GET /stream`` (``stream.StreamEndpoint``);
    ``GET /dashboard`` is the page of ``dashboard``."""
    routes: list[BaseRoute] = [
        Route("/", top_list, methods=["GET"], name="top_list"),
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/readyz", ops.readyz, methods=["GET"]),
        Route("/status", ops.status, methods=["GET"]),
        Route("/version", ops.version, methods=["GET"]),
    ]
    if stream is not None:
        routes.append(Route("/stream", stream, methods=["GET"]))
    routes.append(Route(DASHBOARD_PATH, dashboard, methods=["GET"]))
    return routes + (_operator_routes(ops) if operator else [])


def build_ops_routes(ops: OpsEndpoints) -> list[BaseRoute]:
    """The routes of the ops port (``WEB_OPS_PORT``)."""
    return [
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/readyz", ops.readyz, methods=["GET"]),
        *_operator_routes(ops),
    ]


def _operator_routes(ops: OpsEndpoints) -> list[BaseRoute]:
    return [
        Route("/metrics", ops.prometheus, methods=["GET"]),
        Route("/diagnostics", ops.diagnostics, methods=["GET"]),
    ]
