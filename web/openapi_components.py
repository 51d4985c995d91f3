"""The reusable parts of the OpenAPI document (``web/openapi.py``): the component schemas
of every JSON answer and the response headers the routes describe."""

from __future__ import annotations

from typing import Any

__all__ = ["HEADERS", "SCHEMAS", "Schema", "ref"]

Schema = dict[str, Any]


def ref(kind: str, name: str) -> Schema:
    """A ``$ref`` to the component ``name`` of ``kind`` (``schemas``)."""
    return {"$ref": f"#/components/{kind}/{name}"}


def _nullable(type_: str, **extra: Any) -> Schema:
    """A ``type_`` value that may be null."""
    return {"type": [type_, "null"], **extra}


_TIME = {"type": ["string", "null"], "format": "date-time"}

# How big the list is: the meta of the live and of a historical list.
_LIST_SIZE: dict[str, Schema] = {
    "total_ranked": {"type": "integer", "minimum": 0},
    "provider_total": _nullable("integer"),
    "count": {"type": "integer", "minimum": 0},
    "limit": {"type": "integer", "minimum": 1},
}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "description": "Every error answer: a machine-readable code and what to fix.",
        "required": ["error", "detail"],
        "properties": {
            "error": {
                "type": "string",
                "examples": ["invalid_limit", "no_data_yet", "history_unavailable"],
            },
            "detail": {"type": "string"},
            "earliest": {
                **_TIME,
                "description": "history_unavailable only: the first moment `at` can answer.",
            },
        },
    },
    "TopListItem": {
        "type": "object",
        "required": [
            "rank",
            "symbol",
            "name",
            "price_usd",
            "cmc_id",
            "volume_24h_usd",
            "market_cap_usd",
            "percent_change_24h",
            "price_fetched_at",
            "rank_fetched_at",
        ],
        "properties": {
            "rank": {"type": "integer", "minimum": 1, "description": "1-based, contiguous"},
            "symbol": {"type": "string", "description": "CryptoCompare's symbol"},
            "name": {"type": "string"},
            "price_usd": _nullable(
                "number", description="null when CoinMarketCap has no price; never 0 for that"
            ),
            "cmc_id": _nullable("integer", description="the CoinMarketCap id priced"),
            "volume_24h_usd": _nullable("number"),
            "market_cap_usd": _nullable(
                "number", minimum=0, description="CoinMarketCap's USD market cap; null when unknown"
            ),
            "percent_change_24h": _nullable(
                "number",
                minimum=-100,
                description="CoinMarketCap's 24 h price change in percent; null when unknown",
            ),
            "price_fetched_at": _TIME,
            "rank_fetched_at": _TIME,
        },
    },
    "LiveMeta": {
        "type": "object",
        "required": [
            "ranking_updated_at",
            "prices_updated_at",
            "ranking_age_seconds",
            "prices_age_seconds",
            "stale",
            "stale_sources",
            "total_ranked",
            "count",
            "limit",
        ],
        "properties": {
            "ranking_updated_at": _TIME,
            "prices_updated_at": _TIME,
            "ranking_age_seconds": _nullable("integer", minimum=0),
            "prices_age_seconds": _nullable("integer", minimum=0),
            "stale": {"type": "boolean"},
            "stale_sources": {"type": "array", "items": {"type": "string"}},
            **_LIST_SIZE,
        },
    },
    "HistoricalMeta": {
        "type": "object",
        "required": ["at", "historical", "ranking_updated_at", "total_ranked", "count", "limit"],
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "historical": {"const": True},
            "ranking_updated_at": _TIME,
            "prices_updated_at": _TIME,
            **_LIST_SIZE,
        },
    },
    "TopList": {
        "type": "object",
        "required": ["data", "meta"],
        "properties": {
            "data": {"type": "array", "items": ref("schemas", "TopListItem")},
            "meta": {
                "anyOf": [ref("schemas", "LiveMeta"), ref("schemas", "HistoricalMeta")],
                "description": "LiveMeta for the live list, HistoricalMeta with `at`.",
            },
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "ok"}},
    },
    "Ready": {
        "type": "object",
        "required": ["status", "generation", "total_ranked", "stale", "consumer_running"],
        "properties": {
            "status": {"const": "ready"},
            "generation": {"type": "integer"},
            "total_ranked": {"type": "integer", "minimum": 0},
            "ranking_updated_at": _TIME,
            "stale": {"type": "boolean"},
            "stale_sources": {"type": "array", "items": {"type": "string"}},
            "consumer_running": {"type": "boolean"},
        },
    },
    "SourceStatus": {
        "type": "object",
        "required": ["provides", "status", "served_fetched_at", "age_seconds", "stale"],
        "properties": {
            "provides": {"type": "string", "enum": ["ranking", "prices"]},
            "status": {"type": "string", "enum": ["ok", "failing", "unknown"]},
            "component": _nullable("string"),
            "poll_interval_seconds": _nullable("number"),
            "last_attempt_at": _TIME,
            "last_success_at": _TIME,
            "last_snapshot_id": _nullable("string"),
            "last_error": _nullable("string"),
            "last_error_kind": _nullable("string"),
            "last_error_at": _TIME,
            "consecutive_failures": _nullable("integer"),
            "served_fetched_at": _TIME,
            "age_seconds": _nullable("integer", minimum=0),
            "stale_after_seconds": {"type": "number"},
            "stale": {"type": "boolean"},
        },
    },
    "Status": {
        "type": "object",
        "required": ["stale", "stale_sources", "served", "replica", "sources"],
        "properties": {
            "stale": {"type": "boolean"},
            "stale_sources": {"type": "array", "items": {"type": "string"}},
            "served": {
                "type": ["object", "null"],
                "description": "the generation served; null before the first one",
            },
            "replica": {
                "type": "object",
                "required": ["caught_up", "consumer_running"],
                "properties": {
                    "caught_up": {"type": "boolean"},
                    "consumer_running": {"type": "boolean"},
                },
            },
            "sources": {
                "type": "object",
                "description": "by provider: cryptocompare (ranking), coinmarketcap (prices)",
                "additionalProperties": ref("schemas", "SourceStatus"),
            },
        },
    },
    "Version": {
        "type": "object",
        "required": ["version", "git_commit", "build_time"],
        "properties": {
            "version": {"type": "string"},
            "git_commit": {"type": "string", "description": "a SHA, or unknown"},
            "build_time": {"type": "string", "description": "ISO 8601 UTC, or unknown"},
        },
    },
    "Diagnostics": {
        "type": "object",
        "required": ["data", "match_rules", "meta"],
        "properties": {
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["rank", "symbol", "name", "cmc_id", "match_rule", "price_usd"],
                    "properties": {
                        "rank": {"type": "integer", "minimum": 1},
                        "symbol": {"type": "string"},
                        "name": {"type": "string"},
                        "cmc_id": _nullable("integer"),
                        "match_rule": {"type": "string"},
                        "price_usd": _nullable("number"),
                    },
                },
            },
            "match_rules": {"type": "object", "additionalProperties": {"type": "integer"}},
            "meta": {"type": "object"},
        },
    },
}

HEADERS: dict[str, Schema] = {
    "ETag": {
        "description": "Changes with the data and when a source turns stale or fresh; weak "
        '(`W/"…"`) for live JSON, strong for CSV and for `at` answers. Send it back in '
        "`If-None-Match` for a 304.",
        "schema": {"type": "string"},
    },
    "Last-Modified": {
        "description": "The older of the ranking's and the prices' fetch times (HTTP date).",
        "schema": {"type": "string"},
    },
    "X-Data-Age": {
        "description": "Whole seconds since the oldest source was fetched (live list only).",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-Data-Stale": {
        "description": "`true` when any source is stale (live list only).",
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
    "Retry-After": {
        "description": "Seconds to wait before asking again.",
        "schema": {"type": "integer", "minimum": 0},
    },
}
