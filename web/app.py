"""``create_app(settings)``: the web service as one Starlette application.

The app is built from plain data (routes, middleware, exception handlers) and one
lifespan that starts the replica before the first request and stops it after the last.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware

from topcoins.schemas.topics import Topics
from topcoins.settings import Settings
from topcoins.web.errors import exception_handlers
from topcoins.web.freshness import FreshnessClock, StalenessPolicy
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
) -> Starlette:
    """The web app; ``replica`` defaults to a Kafka ``TopListReplica`` of the top topic.

    Tests and benchmarks pass a ``StaticReplica``; ``build`` defaults to what
    ``load_build_info()`` finds (package version, git commit, install time); ``clock``
    (unix seconds) is what data ages are measured against.
    """
    served: Replica = (
        TopListReplica(settings, Topics.for_prefix(settings.topic_prefix))
        if replica is None
        else replica
    )
    build = build or load_build_info()
    renderer = Renderer(served, FreshnessClock(StalenessPolicy(settings), clock))
    metrics = WebMetrics(served, build, renderer.freshness)
    top_list = TopListEndpoint(renderer, QueryParser(settings.ranking_depth))
    ops = OpsEndpoints(served, renderer, metrics, build)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with served:
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
