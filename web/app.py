"""``create_app(settings)``: the web service as one Starlette application.

The app is built from plain data (routes, middleware, exception handlers) and one
lifespan that starts the replica before the first request and stops it after the last,
and owns the history reader of ``GET /?at=`` (created at startup, connected to Kafka on
the first such request, closed at shutdown).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware

from topcoins.settings import Settings
from topcoins.web.errors import exception_handlers
from topcoins.web.freshness import FreshnessClock, StalenessPolicy
from topcoins.web.history import HistoricalLists, HistorySource, history_reader
from topcoins.web.metrics import WebMetrics
from topcoins.web.middleware import RequestMetricsMiddleware, TopListFastPath
from topcoins.web.params import QueryParser
from topcoins.web.replica import Replica, TopListReplica
from topcoins.web.routes import OpsEndpoints, Renderer, TopListEndpoint, build_routes
from topcoins.web.version import BuildInfo, load_build_info

__all__ = ["create_app"]


def create_app(
    settings: Settings,
    replica: Replica | None = None,
    *,
    build: BuildInfo | None = None,
    clock: Callable[[], float] = time.time,
    history: HistorySource | None = None,
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
    historical = HistoricalLists(history)
    top_list = TopListEndpoint(renderer, QueryParser(settings.ranking_depth), historical)
    ops = OpsEndpoints(served, renderer, metrics, build)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(served)
            if history is None:
                reader = history_reader(settings, clock)
                historical.reader = await stack.enter_async_context(reader)
                stack.callback(setattr, historical, "reader", None)
            yield

    app = Starlette(
        routes=build_routes(top_list, ops),
        middleware=[
            Middleware(TopListFastPath, endpoint=top_list, counter=metrics.requests),
            Middleware(RequestMetricsMiddleware, counter=metrics.requests),
        ],
        exception_handlers=dict(exception_handlers),
        lifespan=lifespan,
    )
    # No trailing-slash redirects: an unknown path (``/status/`` too) is a JSON 404. The
    # redirect's Location would be built from the client's Host header, whatever it holds.
    app.router.redirect_slashes = False
    return app
