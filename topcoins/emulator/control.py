"""The emulator's own control API under ``/_emulator/`` (not part of either provider).

Every error is ``{"error": "<code>", "detail": "<what to fix>"}`` with a 4xx status.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from topcoins.emulator.faults import parse_fault_request
from topcoins.emulator.market import UnknownAssetError
from topcoins.emulator.state import emulator_state

__all__ = ["CONTROL_ROUTES", "ControlError", "control_error"]

logger = logging.getLogger(__name__)


class ControlError(Exception):
    """A control request the emulator cannot carry out; rendered as a JSON problem."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


async def control_error(request: Request, exc: Exception) -> Response:
    """Exception handler for ``ControlError``."""
    assert isinstance(exc, ControlError)
    return JSONResponse({"error": exc.error, "detail": exc.detail}, exc.status)


async def _body(request: Request, *required: str) -> Mapping[str, Any]:
    try:
        payload = await request.json()
    except ValueError:
        raise ControlError(400, "invalid_json", "the body must be a JSON object") from None
    if not isinstance(payload, dict):
        raise ControlError(400, "invalid_json", "the body must be a JSON object")
    missing = [name for name in required if name not in payload]
    if missing:
        raise ControlError(400, "missing_field", f"the body needs {', '.join(missing)}")
    return payload


@contextlib.contextmanager
def _asset_errors() -> Iterator[None]:
    """A change to the market that fails: an unknown asset is a 404, a bad value a 400."""
    try:
        yield
    except UnknownAssetError as exc:
        raise ControlError(404, "unknown_asset", str(exc)) from exc
    except ValueError as exc:
        raise ControlError(400, "invalid_value", str(exc)) from exc


async def healthz(request: Request) -> Response:
    """``GET /healthz``: the emulator is up."""
    return JSONResponse({"status": "ok"})


async def state(request: Request) -> Response:
    """``GET /_emulator/state``: ranking, prices, listings and active faults."""
    emulator = emulator_state(request)
    return JSONResponse(emulator.market.snapshot() | {"faults": emulator.faults.describe()})


async def faults(request: Request) -> Response:
    """``GET``/``POST /_emulator/faults``: show or set the injected faults."""
    book = emulator_state(request).faults
    if request.method == "POST":
        payload = await _body(request)
        try:
            providers, fault = parse_fault_request(payload, book.monotonic())
        except ValueError as exc:
            raise ControlError(400, "invalid_fault", str(exc)) from exc
        book.set(providers, fault)
        logger.info("fault set", extra={"providers": providers, "mode": payload["mode"]})
    return JSONResponse({"faults": book.describe()})


async def set_price(request: Request) -> Response:
    """``POST /_emulator/assets/price {"cmc_id", "price_usd"}``."""
    payload = await _body(request, "cmc_id", "price_usd")
    if type(payload["cmc_id"]) is not int:
        raise ControlError(400, "invalid_value", "cmc_id must be an integer")
    market = emulator_state(request).market
    with _asset_errors():
        asset = market.set_price(payload["cmc_id"], payload["price_usd"])
    return JSONResponse(
        {"cmc_id": asset.cmc_id, "symbol": asset.cc_symbol, "price_usd": market.price(asset)}
    )


async def set_volume(request: Request) -> Response:
    """``POST /_emulator/assets/volume {"symbol", "volume_24h_usd"}`` (a CryptoCompare symbol)."""
    payload = await _body(request, "symbol", "volume_24h_usd")
    if not isinstance(payload["symbol"], str):
        raise ControlError(400, "invalid_value", "symbol must be a CryptoCompare symbol string")
    market = emulator_state(request).market
    with _asset_errors():
        asset = market.set_volume(payload["symbol"], payload["volume_24h_usd"])
    position = market.ranking().index(asset) + 1
    return JSONResponse(
        {
            "symbol": asset.cc_symbol,
            "volume_24h_usd": market.volume(asset),
            "position": position,
            "cmc_id": asset.cmc_id,
        }
    )


async def pause(request: Request) -> Response:
    """``POST /_emulator/pause``: stop the random drift (values stay exact)."""
    market = emulator_state(request).market
    market.paused = True
    return JSONResponse({"paused": True, "ticks": market.ticks})


async def resume(request: Request) -> Response:
    """``POST /_emulator/resume``: restart the random drift."""
    market = emulator_state(request).market
    market.paused = False
    return JSONResponse({"paused": False, "ticks": market.ticks})


async def tick(request: Request) -> Response:
    """``POST /_emulator/tick?count=N``: advance the drift by N steps now (default 1)."""
    market = emulator_state(request).market
    try:
        count = int(request.query_params.get("count", "1"))
    except ValueError:
        count = 0
    if not 1 <= count <= 10_000:
        raise ControlError(400, "invalid_count", "count must be an integer from 1 to 10000")
    for _ in range(count):
        market.tick()
    return JSONResponse({"paused": market.paused, "ticks": market.ticks})


async def calls(request: Request) -> Response:
    """``GET /_emulator/calls``: call counts and recent times; ``DELETE`` resets them."""
    log = emulator_state(request).calls
    if request.method == "DELETE":
        log.clear()
    return JSONResponse(log.snapshot())


CONTROL_ROUTES = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/_emulator/state", state, methods=["GET"]),
    Route("/_emulator/faults", faults, methods=["GET", "POST"]),
    Route("/_emulator/assets/price", set_price, methods=["POST"]),
    Route("/_emulator/assets/volume", set_volume, methods=["POST"]),
    Route("/_emulator/pause", pause, methods=["POST"]),
    Route("/_emulator/resume", resume, methods=["POST"]),
    Route("/_emulator/tick", tick, methods=["POST"]),
    Route("/_emulator/calls", calls, methods=["GET", "DELETE"]),
]
