"""``GET /openapi.json``: the OpenAPI 3.1 document of the web service's HTTP API.

The document is built once, when the app is created, from what the app really does:
the query parameter names are ``params.PARAMETERS``, ``limit``'s bounds and default come
from the app's ``QueryParser`` (1 to ``RANKING_DEPTH``), the formats from
``params.Format``. It describes the routes the app serves and nothing else; a served
route (or a ``GET /`` parameter) this module has no description for is left out, and
``tests/web/test_openapi.py`` fails on it (it also validates the document).
``tests/e2e/test_openapi_live.py`` runs schemathesis against a live service.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from topcoins import __version__
from topcoins.web.openapi_components import HEADERS, SCHEMAS, Schema, ref
from topcoins.web.params import PARAMETERS, Format, QueryParser
from topcoins.web.responses import CSV_MEDIA_TYPE, JSON_MEDIA_TYPE

__all__ = [
    "DESCRIBED_PATHS",
    "OPENAPI_PATH",
    "TOP_LIST_PARAMETERS",
    "describe",
    "openapi_route",
    "with_openapi",
]

OPENAPI_PATH = "/openapi.json"


def _json(schema: str) -> Schema:
    return {JSON_MEDIA_TYPE: {"schema": ref("schemas", schema)}}


def _header(name: str, *, required: bool = False) -> Schema:
    return {**HEADERS[name], "required": required}


def _error(description: str, *, retry_after: bool = False) -> Schema:
    answer: Schema = {"description": description, "content": _json("Error")}
    if retry_after:
        answer["headers"] = {"Retry-After": _header("Retry-After", required=True)}
    return answer


def _media(content_type: str) -> str:
    return content_type.split(";")[0].strip()


def _top_list_parameters(parser: QueryParser) -> dict[str, Schema]:
    formats = [str(fmt) for fmt in Format]
    return {
        "limit": {
            "description": f"How many assets: 1 to RANKING_DEPTH ({parser.max_limit} here). "
            "ASCII digits only.",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": parser.max_limit,
                "default": parser.default_limit,
            },
        },
        "format": {
            "description": "The representation (case-insensitive); without it, `Accept: "
            "text/csv` ranked above `application/json` gets CSV.",
            "schema": {"type": "string", "enum": formats},
        },
        "at": {
            "description": "The list as it was at that moment: an ISO 8601 time with an "
            "explicit offset (`2026-11-27T12:00:00Z`, `2026-11-27T13:00:00.123%2B01:00`), "
            "1970 or later, not in the future, within the raw topics' retention "
            "(RAW_RETENTION_HOURS, 7 days by default).",
            "schema": {"type": "string", "format": "date-time"},
        },
    }


# The query parameters of GET / this module describes (tests compare with params.PARAMETERS).
TOP_LIST_PARAMETERS = frozenset(_top_list_parameters(QueryParser(1)))


def _top_list(parser: QueryParser) -> Schema:
    parameters = _top_list_parameters(parser)
    return {
        "get": {
            "operationId": "getTopList",
            "summary": "The top assets by 24h total volume, priced in USD, as JSON or CSV",
            "description": "Each parameter at most once; any other parameter is a 400. "
            "HEAD answers the same headers without a body.",
            "parameters": [
                {"name": name, "in": "query", "required": False, **parameters[name]}
                for name in PARAMETERS
                if name in parameters
            ]
            + [
                {
                    "name": "If-None-Match",
                    "in": "header",
                    "required": False,
                    "description": "An ETag from an earlier answer: 304 when it still holds.",
                    "schema": {"type": "string"},
                }
            ],
            "responses": {
                "200": {
                    "description": "The list. CSV: header `Rank,Symbol,Price USD`, RFC 4180, "
                    "CRLF line ends, an empty field for an unknown price.",
                    "headers": {
                        "ETag": _header("ETag", required=True),
                        "Last-Modified": _header("Last-Modified", required=True),
                        "X-Data-Age": _header("X-Data-Age"),
                        "X-Data-Stale": _header("X-Data-Stale"),
                    },
                    "content": {
                        JSON_MEDIA_TYPE: {"schema": ref("schemas", "TopList")},
                        _media(CSV_MEDIA_TYPE): {"schema": {"type": "string"}},
                    },
                },
                "304": {
                    "description": "Not modified: `If-None-Match` matches the current ETag.",
                    "headers": {"ETag": _header("ETag", required=True)},
                },
                "400": _error(
                    "A bad, unknown or repeated parameter (`invalid_limit`, `invalid_format`, "
                    "`invalid_at`, `at_in_future`, `unknown_parameter`, `invalid_query`)."
                ),
                "404": _error(
                    "`history_unavailable`: `at` is before the retained history; `earliest` "
                    "is the first moment that can be answered, or null."
                ),
                "503": _error(
                    "`no_data_yet` (no list has arrived yet), `history_read_failed` (reading "
                    "Kafka failed), `history_busy` / `history_timeout` (too many `at` "
                    "requests waiting, or one took too long).",
                    retry_after=True,
                ),
            },
        }
    }


def _stream(parser: QueryParser) -> Schema:
    operation = _simple(
        "getStream",
        "Server-sent events: the list each time it changes",
        {
            "200": {
                "description": "An event stream (it does not end): `id: <event id>` and "
                "`data: <the GET / JSON body>` per event, a `: heartbeat` comment every 15 s.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            "400": _error("A bad or unknown parameter."),
            "503": _error("`too_many_streams`: WEB_STREAM_MAX streams are open.", retry_after=True),
        },
        "The current list on connect, then one event per new generation or staleness change. "
        "Only `limit` is accepted; any other parameter is a 400.",
    )
    operation["get"]["parameters"] = [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            **_top_list_parameters(parser)["limit"],
        },
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "description": "The id of the last event received: the current list is not sent "
            "again when it still has that id.",
            "schema": {"type": "string"},
        },
    ]
    return operation


def _simple(
    operation_id: str, summary: str, responses: Mapping[str, Schema], description: str = ""
) -> Schema:
    operation: Schema = {"operationId": operation_id, "summary": summary}
    if description:
        operation["description"] = description
    operation["responses"] = dict(responses)
    return {"get": operation}


def _ok(schema: str, description: str = "OK") -> Schema:
    return {"description": description, "content": _json(schema)}


_NO_DATA = _error("`no_data_yet`: no list has arrived yet.", retry_after=True)

_DESCRIPTIONS: dict[str, Callable[[QueryParser], Schema]] = {
    "/": _top_list,
    "/healthz": lambda _: _simple("getHealth", "The process is alive", {"200": _ok("Health")}),
    "/readyz": lambda _: _simple(
        "getReadiness",
        "Ready once the replica holds a complete list",
        {
            "200": _ok("Ready", "Ready; it stays ready while the data is stale."),
            "503": _error("`not_ready`: no complete list yet.", retry_after=True),
        },
    ),
    "/status": lambda _: _simple(
        "getStatus",
        "Per provider: last successful fetch, last error, age, stale or not",
        {"200": _ok("Status")},
    ),
    "/version": lambda _: _simple(
        "getVersion", "Version, git commit and build time", {"200": _ok("Version")}
    ),
    "/diagnostics": lambda _: _simple(
        "getDiagnostics",
        "Every ranked asset with the rule that matched it to CoinMarketCap",
        {"200": _ok("Diagnostics"), "503": _NO_DATA},
    ),
    "/metrics": lambda _: _simple(
        "getMetrics",
        "Prometheus metrics (text exposition format)",
        {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    ),
    "/stream": _stream,
    "/dashboard": lambda _: _simple(
        "getDashboard",
        "A live page: the market table and a liquidity scatter plot, fed by /stream",
        {
            "200": {
                "description": "The page (HTML with its own script and style).",
                "content": {"text/html": {"schema": {"type": "string"}}},
            }
        },
    ),
    OPENAPI_PATH: lambda _: _simple(
        "getOpenAPI",
        "This document",
        {
            "200": {
                "description": "The OpenAPI 3.1 document.",
                "content": {JSON_MEDIA_TYPE: {"schema": {"type": "object"}}},
            }
        },
    ),
}


# Every path this module can describe; a served path missing here is left out.
DESCRIBED_PATHS = frozenset(_DESCRIPTIONS)


def describe(paths: Iterable[str], parser: QueryParser) -> dict[str, Any]:
    """The OpenAPI 3.1 document for the served ``paths`` (in that order) that this module
    describes; ``parser`` is the app's, for ``limit``'s bounds."""
    described = {path: _DESCRIPTIONS[path](parser) for path in paths if path in _DESCRIPTIONS}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "topcoins",
            "version": __version__,
            "summary": "The top crypto assets by 24h total volume, priced in USD.",
            "description": 'Errors are JSON `{"error": code, "detail": what to fix}`; '
            "404 and 405 answer the same shape for unknown paths and methods. Bad input is "
            "never a 5xx.",
        },
        "paths": described,
        "components": {"schemas": {name: SCHEMAS[name] for name in sorted(SCHEMAS)}},
    }


def openapi_route(routes: Iterable[BaseRoute], parser: QueryParser) -> Route:
    """The ``GET /openapi.json`` route describing ``routes`` and itself."""
    paths = [route.path for route in routes if isinstance(route, Route)]
    body = json.dumps(describe([*paths, OPENAPI_PATH], parser), separators=(",", ":")).encode()

    async def openapi(request: Request) -> Response:
        """The OpenAPI 3.1 document of this service."""
        return Response(body, media_type=JSON_MEDIA_TYPE, headers={"Cache-Control": "no-cache"})

    return Route(OPENAPI_PATH, openapi, methods=["GET"])


def with_openapi(routes: list[BaseRoute], parser: QueryParser) -> list[BaseRoute]:
    """``routes`` followed by ``GET /openapi.json``, which describes all of them."""
    return [*routes, openapi_route(routes, parser)]
