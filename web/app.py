"""``create_app(settings)``: the web service as one Starlette application.

The app is built from plain data (routes, middleware, exception handlers) and one
lifespan that starts the replica before the first request and stops it after the last,
and owns the history reader of ``GET /?at=`` (created at startup, connected to Kafka on
the first such request, closed at shutdown) and the worker process that decodes and joins
for it (``offload.ProcessOffload``). With ``WEB_OPS_PORT`` set, the lifespan also serves
``/metrics`` and ``/diagnostics`` on that port (``ops_server.OpsHTTPServer``) and the
public port no longer does. The lifespan also runs the ``StreamHub`` that feeds
``GET /stream`` (``fanout``); ``app.state.stream_hub`` is that hub, which ``run_web``
closes as soon as the server starts shutting down.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware

from topcoins.settings import Settings
from topcoins.web.admission import AtAdmission
from topcoins.web.errors import exception_handlers
from topcoins.web.fanout import StreamHub
from topcoins.web.fast_path import TopCoinsApp, TopListFastPath
from topcoins.web.freshness import FreshnessClock, StalenessPolicy
from topcoins.web.history import HistoricalLists, HistoryLookup, history_reader
from topcoins.web.metrics import HistorySkips, WebMetrics
from topcoins.web.middleware import RequestMetricsMiddleware
from topcoins.web.offload import ProcessOffload
from topcoins.web.openapi import with_openapi
from topcoins.web.ops_server import OpsHTTPServer
from topcoins.web.params import STREAM_PARAMETERS, QueryParser
from topcoins.web.replica import Replica, TopListReplica
from topcoins.web.routes import (
    OpsEndpoints,
    Renderer,
    TopListEndpoint,
    build_ops_routes,
    build_routes,
)
from topcoins.web.stream import StreamEndpoint
from topcoins.web.version import BuildInfo, load_build_info

__all__ = ["create_app"]


def create_app(
    settings: Settings,
    replica: Replica | None = None,
    *,
    build: BuildInfo | None = None,
    clock: Callable[[], float] = time.time,
    history: HistoryLookup | None = None,
) -> Starlette:
    """The web app; ``replica`` defaults to a Kafka ``TopListReplica`` of the top topic.

    Tests and benchmarks pass a ``StaticReplica``; ``build`` defaults to what
    ``load_build_info()`` finds (package version, git commit, install time); ``clock``
    (unix seconds) is what data ages are measured against, and what "in the future" means
    for ``at``. ``history`` answers ``GET /?at=``; by default the lifespan opens a
    ``HistoryReader`` of the raw topics and closes it at shutdown, while a given one
    (tests pass a fake) is the caller's to open and close.
    """
    served: Replica = TopListReplica(settings, settings.topics) if replica is None else replica
    build = build or load_build_info()
    renderer = Renderer(served, FreshnessClock(StalenessPolicy(settings), clock))
    metrics = WebMetrics(served, build, renderer.freshness)
    admission = AtAdmission(
        settings.at_max_waiting, settings.at_timeout_seconds, settings.at_max_per_second
    )
    historical = HistoricalLists(history, admission)
    metrics.registry.register(HistorySkips(lambda: historical.reader))
    top_list = TopListEndpoint(renderer, QueryParser(settings.ranking_depth), historical)
    ops = OpsEndpoints(served, renderer, metrics, build)
    hub = StreamHub(served, renderer, settings.web_stream_max)
    metrics.registry.register(hub)
    stream = StreamEndpoint(hub, QueryParser(settings.ranking_depth, STREAM_PARAMETERS))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(served)
            await stack.enter_async_context(hub)
            if settings.web_ops_port is not None:
                server = OpsHTTPServer(ops_app(ops), settings.web_host, settings.web_ops_port)
                await stack.enter_async_context(server)
            if history is None:
                offload = await stack.enter_async_context(ProcessOffload())
                reader = history_reader(settings, clock, offload)
                historical.reader = await stack.enter_async_context(reader)
                stack.callback(setattr, historical, "reader", None)
            yield

    app = TopCoinsApp(
        routes=with_openapi(
            build_routes(top_list, ops, operator=settings.web_ops_port is None, stream=stream),
            top_list.parser,
        ),
        middleware=[
            Middleware(RequestMetricsMiddleware, counter=metrics.requests),
        ],
        exception_handlers=dict(exception_handlers),
        lifespan=lifespan,
    )
    # No trailing-slash redirects: an unknown path (``/status/`` too) is a JSON 404. The
    # redirect's Location would be built from the client's Host header, whatever it holds.
    app.router.redirect_slashes = False
    # A live GET / is answered ahead of the middleware stack above (web.fast_path).
    app.fast_path = TopListFastPath(top_list, metrics.requests)
    # run_web closes the open streams when the server starts shutting down (web.main).
    app.state.stream_hub = hub
    return app


def ops_app(ops: OpsEndpoints) -> Starlette:
    """The app of the ops port: health, readiness, metrics and match diagnostics."""
    app = Starlette(routes=build_ops_routes(ops), exception_handlers=dict(exception_handlers))
    app.router.redirect_slashes = False
    return app
