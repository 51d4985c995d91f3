"""The web service: the top list over HTTP as JSON or CSV, read from the top topic.

``create_app(settings)`` builds the Starlette app; ``run_web(settings)`` serves it.

``GET /?limit=N&format=json|csv``
    The top N assets by 24h total volume. ``limit``: 1 to ``RANKING_DEPTH``, default
    ``min(200, RANKING_DEPTH)``. ``format`` defaults to what ``Accept`` prefers (CSV only
    when ``text/csv`` ranks above ``application/json``). Unknown or repeated parameters,
    and bad values, are 400 ``{"error": ..., "detail": ...}``; 503 with ``Retry-After``
    until the first complete generation has arrived. Answers carry an ``ETag`` (weak for
    JSON, strong for CSV; it changes with the data and when a source turns stale) and
    honour ``If-None-Match`` with 304.

    JSON: ``{"data": [{"rank", "symbol", "name", "price_usd", "cmc_id",
    "volume_24h_usd", "market_cap_usd", "percent_change_24h", "price_fetched_at",
    "rank_fetched_at"}, ...], "meta":
    {"ranking_updated_at", "prices_updated_at", "ranking_age_seconds",
    "prices_age_seconds", "stale", "stale_sources", "total_ranked", "provider_total",
    "count", "limit"}}``. CSV: ``Rank,Symbol,Price USD`` with CRLF line ends and RFC 4180
    quoting. An unknown price is ``null`` / an empty field, never 0, and has no
    ``price_fetched_at``. Numbers are the shortest text that reads back as the same
    double, positional (no exponent) and always with a decimal point; timestamps are
    ``2024-05-01T12:00:00.000Z``. Headers: ``Last-Modified`` (the older of the two fetch
    times), ``X-Data-Age`` (seconds, oldest source), ``X-Data-Stale: true|false``; see
    ``topcoins.web.freshness`` for ages and the staleness rule.

``GET /status``
    Per provider (``cryptocompare``: ranking, ``coinmarketcap``: prices): its latest
    reported poll (``ProducerStatus``, or ``"status": "unknown"``) and the age and
    staleness of its served data; plus the served generation's snapshot ids.

``GET /healthz``, ``/readyz``, ``/version``, ``/metrics``, ``/diagnostics``
    Liveness; readiness (the replica has read the top topic to its end and holds a
    complete list; it then stays ready, stale data or not); version, git commit and build
    time; Prometheus metrics; every ranked asset with its match rule.

``GET /stream?limit=N``
    The list as Server-Sent Events: the ``GET /`` JSON body on connect, then one event per
    new generation (or staleness change), ids stable across replicas so ``Last-Event-ID``
    resumes; heartbeats every 15 s; 503 past ``WEB_STREAM_MAX`` (``topcoins.web.stream``).

``GET /openapi.json``
    The OpenAPI 3.1 document of every route served on the port (``topcoins.web.openapi``).

``GET /?at=<ISO 8601 time>[&limit=N&format=json|csv]``
    The list as it was at that moment, recomputed from the raw snapshot topics (about 7
    days back; see ``topcoins.web.history``). ``at`` needs an explicit offset
    (``2026-11-27T12:00:00Z``, ``...+01:00``). Same ``data`` and CSV as the live list;
    the JSON ``meta`` is ``{"at", "historical": true, "ranking_updated_at",
    "prices_updated_at", "total_ranked", "provider_total", "count", "limit"}`` (no ages,
    no staleness), the ``ETag`` is strong in both formats and there are no ``X-Data-*``
    headers. 400 ``invalid_at`` / ``at_in_future``; 404 ``history_unavailable`` (with
    ``earliest``) before the retained history; 503 ``history_read_failed`` with
    ``Retry-After`` when the broker fails. Never served from the live cache.
"""

from topcoins.web.app import create_app
from topcoins.web.errors import (
    HistoryNotFound,
    HistoryReadFailed,
    IncompleteGeneration,
    InvalidMessage,
    InvalidParameter,
    MixedGeneration,
    NoDataYet,
    ReplicaError,
    RequestError,
    WebError,
)
from topcoins.web.freshness import Freshness, Source, StalenessPolicy
from topcoins.web.history import HistoryLookup
from topcoins.web.main import run_web
from topcoins.web.replica import Replica, ReplicaStats, TopListReplica
from topcoins.web.status import StatusBoard
from topcoins.web.version import BuildInfo
from topcoins.web.view import TopListBuilder, TopListEntry, TopListView

__all__ = [
    "BuildInfo",
    "Freshness",
    "HistoryLookup",
    "HistoryNotFound",
    "HistoryReadFailed",
    "IncompleteGeneration",
    "InvalidMessage",
    "InvalidParameter",
    "MixedGeneration",
    "NoDataYet",
    "Replica",
    "ReplicaError",
    "ReplicaStats",
    "RequestError",
    "Source",
    "StalenessPolicy",
    "StatusBoard",
    "TopListBuilder",
    "TopListEntry",
    "TopListReplica",
    "TopListView",
    "WebError",
    "create_app",
    "run_web",
]
