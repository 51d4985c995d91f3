"""The providers' endpoints: auth, parameters and injected faults, then a rendered body.

Behaviour where the real API is unknown or differs on purpose:
- CoinMarketCap: with no key configured any non-empty key is accepted; ``convert`` other
  than USD is a 400. Auth is checked before parameters. Quotes (v2) take ``id`` only (no
  ``symbol``/``slug``); an unknown id is a 400 unless ``skip_invalid=true``.
- CoinMarketCap ``/v1/key/info`` reports the Basic plan (10,000 credits a month, 30 calls
  a minute) and the credits this emulator charged; it costs no credit itself.
- CryptoCompare: ``limit`` is clamped to 10..100 (the legacy docs' min and max) rather
  than rejected; a page past the end has an empty ``Data``; ``MetaData.Count`` is the
  number of ranked assets. Auth is checked before parameters, and errors use HTTP 200.
  ``/stats/rate/limit`` counts this emulator's CryptoCompare calls (itself included).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from topcoins.emulator.faults import Fault
from topcoins.emulator.responses import (
    CC_AUTH_MESSAGE,
    CMC_RATE_LIMIT_MESSAGE,
    CMC_SORTS,
    cc_error,
    cc_rate_limit,
    cc_rate_limit_stats,
    cc_toplist,
    cmc_error,
    cmc_key_info,
    cmc_listings,
    cmc_status,
)
from topcoins.emulator.state import EmulatorState, emulator_state

__all__ = [
    "CC_RATE_LIMIT_PATH",
    "CC_TOPLIST_PATH",
    "CMC_KEY_INFO_PATH",
    "CMC_LISTINGS_PATH",
    "CMC_QUOTES_PATH",
    "PROVIDER_ROUTES",
]

CMC_LISTINGS_PATH = "/v1/cryptocurrency/listings/latest"
CMC_QUOTES_PATH = "/v2/cryptocurrency/quotes/latest"
CMC_KEY_INFO_PATH = "/v1/key/info"
CC_TOPLIST_PATH = "/data/top/totalvolfull"
CC_RATE_LIMIT_PATH = "/stats/rate/limit"
_CC_LIMITS = (10, 100)
_CC_PATH_MISSING = {"Response": "Error", "Message": "Path does not exist", "Type": 0, "Data": {}}


class _ParamError(ValueError):
    """A bad query parameter; ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


async def _take_fault(state: EmulatorState, provider: str, request: Request) -> Fault | None:
    """Record the call and return its fault, after sleeping for ``slow``/``timeout``."""
    state.calls.record(provider, request.url.path)
    fault = state.faults.take(provider)
    if fault is not None and fault.mode in ("slow", "timeout"):
        await asyncio.sleep(fault.delay)
    return fault


def _json(
    body: Any, fault: Fault | None, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response; cut in half when the ``malformed`` fault is active."""
    content = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
    if fault is not None and fault.mode == "malformed":
        content = content[: len(content) // 2]
    return Response(content, status, headers, media_type="application/json")


def _server_error(fault: Fault) -> Response:
    return PlainTextResponse(HTTPStatus(fault.status).phrase, status_code=fault.status)


def _integer(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _ParamError(name, f'"{name}" must be an integer, got {raw!r}') from None


# --- CoinMarketCap -----------------------------------------------------------------------


def _cmc_params(query: Mapping[str, str]) -> dict[str, Any]:
    start, limit = _integer(query, "start", 1), _integer(query, "limit", 100)
    if start < 1:
        raise _ParamError("start", '"start" must be larger than or equal to 1')
    if not 1 <= limit <= 5000:
        raise _ParamError("limit", '"limit" must be an integer from 1 to 5000')
    convert = query.get("convert", "USD")
    if convert.upper() != "USD":
        raise _ParamError(
            "convert", f'Invalid value for "convert": "{convert}" (emulator: USD only)'
        )
    if query.get("convert_id", "2781") != "2781":
        raise _ParamError("convert_id", '"convert_id" must be 2781 (USD) on the emulator')
    sort, direction = query.get("sort", "market_cap"), query.get("sort_dir", "desc")
    if sort not in CMC_SORTS:
        raise _ParamError("sort", f'"sort" must be one of [{", ".join(CMC_SORTS)}]')
    if direction not in ("asc", "desc"):
        raise _ParamError("sort_dir", '"sort_dir" must be one of [asc, desc]')
    return {"start": start, "limit": limit, "sort": sort, "descending": direction == "desc"}


async def _cmc_admission(
    state: EmulatorState, request: Request, now: float
) -> tuple[Fault | None, Response | None]:
    """The fault this CoinMarketCap call gets, and what it answers before its parameters are
    read (a fault or a key error), if anything."""
    fault = await _take_fault(state, "coinmarketcap", request)
    return fault, _cmc_refusal(state, request, fault, now)


def _cmc_refusal(
    state: EmulatorState, request: Request, fault: Fault | None, now: float
) -> Response | None:
    mode = fault.mode if fault else None
    if fault is not None and mode == "server_error":
        return _server_error(fault)
    if mode == "rate_limit":
        retry_after = str(max(1, math.ceil(60 - now % 60)))
        body = cmc_error(now, 1008, CMC_RATE_LIMIT_MESSAGE)
        return _json(body, fault, 429, {"Retry-After": retry_after})
    key = request.headers.get("X-CMC_PRO_API_KEY") or request.query_params.get("CMC_PRO_API_KEY")
    if not key and mode != "auth":
        return _json(cmc_error(now, 1002, "API key missing."), fault, 401)
    expected = state.config.cmc_api_key
    if mode == "auth" or (expected and not hmac.compare_digest(key or "", expected)):
        return _json(cmc_error(now, 1001, "This API Key is invalid."), fault, 401)
    return None


async def cmc_listings_latest(request: Request) -> Response:
    """``GET /v1/cryptocurrency/listings/latest``."""
    state, now = emulator_state(request), time.time()
    fault, refusal = await _cmc_admission(state, request, now)
    if refusal is not None:
        return refusal
    try:
        params = _cmc_params(request.query_params)
    except _ParamError as exc:
        return _json(cmc_error(now, 400, str(exc)), fault, 400)
    body = cmc_listings(state.market, now=now, **params)
    state.calls.charge(body["status"]["credit_count"])
    return _json(body, fault)


def _cmc_ids(query: Mapping[str, str], known: Mapping[int, Any]) -> list[int]:
    """The ``id`` list of a quotes call (unknown ids dropped with ``skip_invalid=true``)."""
    raw = query.get("id", "")
    if not raw:
        raise _ParamError("id", '"value" must contain at least one of [id, symbol, slug]')
    try:
        ids = list(dict.fromkeys(int(part) for part in raw.split(",")))
    except ValueError:
        raise _ParamError("id", f'Invalid value for "id": "{raw}"') from None
    unknown = [cmc_id for cmc_id in ids if cmc_id not in known]
    if unknown and query.get("skip_invalid", "false").lower() != "true":
        raise _ParamError("id", f'Invalid value for "id": "{unknown[0]}"')
    if query.get("convert", "USD").upper() != "USD":
        raise _ParamError("convert", 'Invalid value for "convert" (emulator: USD only)')
    return [cmc_id for cmc_id in ids if cmc_id in known]


async def cmc_quotes_latest(request: Request) -> Response:
    """``GET /v2/cryptocurrency/quotes/latest?id=1,1027``: listing items keyed by id."""
    state, now = emulator_state(request), time.time()
    fault, refusal = await _cmc_admission(state, request, now)
    if refusal is not None:
        return refusal
    everything = max(1, len(state.market.listings()))
    listing = cmc_listings(
        state.market, start=1, limit=everything, sort="market_cap", descending=True, now=now
    )
    by_id = {item["id"]: item for item in listing["data"]}
    try:
        ids = _cmc_ids(request.query_params, by_id)
    except _ParamError as exc:
        return _json(cmc_error(now, 400, str(exc)), fault, 400)
    asked = len(request.query_params.get("id", "").split(","))
    status = cmc_status(now) | {"credit_count": max(1, math.ceil(asked / 100)), "notice": None}
    state.calls.charge(status["credit_count"])
    return _json({"status": status, "data": {str(i): by_id[i] for i in ids}}, fault)


async def cmc_key_info_route(request: Request) -> Response:
    """``GET /v1/key/info``: the plan and this key's usage (requests and credits)."""
    state, now = emulator_state(request), time.time()
    fault, refusal = await _cmc_admission(state, request, now)
    if refusal is not None:
        return refusal
    minute = state.calls.calls_made("coinmarketcap")["minute"]
    moment = datetime.fromtimestamp(now, UTC)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    body = cmc_key_info(
        now,
        requests_this_minute=minute,
        credits_today=state.calls.credits_since(midnight.timestamp()),
        credits_this_month=state.calls.credits_since(midnight.replace(day=1).timestamp()),
    )
    return _json(body, fault)


# --- CryptoCompare -----------------------------------------------------------------------


def _cc_key_ok(request: Request, expected: str) -> bool:
    if not expected:
        return True
    key = request.query_params.get("api_key", "")
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if not key and scheme.lower() == "apikey":
        key = value.strip()
    return hmac.compare_digest(key, expected)


def _cc_params(query: Mapping[str, str]) -> tuple[int, int]:
    tsym = query.get("tsym")
    if not tsym:
        raise _ParamError("tsym", "tsym is a required param.")
    if tsym.upper() != "USD":
        raise _ParamError("tsym", f"tsym {tsym} is not supported by the emulator, use USD.")
    page, limit = _integer(query, "page", 0), _integer(query, "limit", 10)
    if page < 0:
        raise _ParamError("page", "page must be 0 or more.")
    return page, min(max(limit, _CC_LIMITS[0]), _CC_LIMITS[1])


async def _cc_admission(
    state: EmulatorState, request: Request
) -> tuple[Fault | None, Response | None]:
    """The fault this CryptoCompare call gets, and what it answers before its parameters are
    read (a fault or a key error), if anything."""
    fault = await _take_fault(state, "cryptocompare", request)
    return fault, _cc_refusal(state, request, fault)


def _cc_refusal(state: EmulatorState, request: Request, fault: Fault | None) -> Response | None:
    mode = fault.mode if fault else None
    if fault is not None and mode == "server_error":
        return _server_error(fault)
    if mode == "rate_limit":
        return _json(cc_rate_limit(state.calls.calls_made("cryptocompare")), fault)
    if mode == "auth" or not _cc_key_ok(request, state.config.cryptocompare_api_key):
        return _json(cc_error(CC_AUTH_MESSAGE, 1), fault)
    return None


async def cc_totalvolfull(request: Request) -> Response:
    """``GET /data/top/totalvolfull``."""
    state, now = emulator_state(request), time.time()
    fault, refusal = await _cc_admission(state, request)
    if refusal is not None:
        return refusal
    try:
        page, limit = _cc_params(request.query_params)
    except _ParamError as exc:
        return _json(cc_error(str(exc), 2, ParamWithError=exc.param), fault)
    return _json(cc_toplist(state.market, page=page, limit=limit, now=now), fault)


async def cc_rate_limit_route(request: Request) -> Response:
    """``GET /stats/rate/limit``: calls made and left per window."""
    state = emulator_state(request)
    fault, refusal = await _cc_admission(state, request)
    if refusal is not None:
        return refusal
    return _json(cc_rate_limit_stats(state.calls.calls_made("cryptocompare")), fault)


async def cc_path_missing(request: Request) -> Response:
    """Any other ``/data/...`` path: CryptoCompare's Type 0 body."""
    emulator_state(request).calls.record("cryptocompare", request.url.path)
    return _json(_CC_PATH_MISSING, None)


PROVIDER_ROUTES = [
    Route(CMC_LISTINGS_PATH, cmc_listings_latest, methods=["GET"]),
    Route(CMC_QUOTES_PATH, cmc_quotes_latest, methods=["GET"]),
    Route(CMC_KEY_INFO_PATH, cmc_key_info_route, methods=["GET"]),
    Route(CC_TOPLIST_PATH, cc_totalvolfull, methods=["GET"]),
    Route(CC_RATE_LIMIT_PATH, cc_rate_limit_route, methods=["GET"]),
    Route("/data/{rest:path}", cc_path_missing, methods=["GET"]),
]
