"""``create_app(config)``: the emulator as one Starlette app (both providers + control API)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from topcoins.emulator.calls import CallLog
from topcoins.emulator.config import EmulatorConfig
from topcoins.emulator.control import CONTROL_ROUTES, ControlError, control_error
from topcoins.emulator.faults import FaultBook
from topcoins.emulator.market import Market, drift
from topcoins.emulator.providers import PROVIDER_ROUTES
from topcoins.emulator.state import EmulatorState
from topcoins.emulator.universe import build_universe

__all__ = ["EmulatorConfig", "create_app"]

logger = logging.getLogger(__name__)


def create_app(config: EmulatorConfig) -> Starlette:
    """Build the emulator; its lifespan runs the market drift every ``config.tick_seconds``.

    The shared state is ``app.state.emulator`` (an ``EmulatorState``): in-process tests can
    read ``app.state.emulator.market`` directly instead of ``GET /_emulator/state``.
    """
    universe = build_universe(config.seed, config.cc_ranked, config.cmc_listed)
    market = Market(universe, seed=config.seed)
    state = EmulatorState(config, market, FaultBook(), CallLog())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with drift(market, config.tick_seconds):
            logger.info(
                "emulator ready",
                extra={"seed": config.seed, "tick_seconds": config.tick_seconds},
            )
            yield
        logger.info("emulator stopped", extra={"ticks": market.ticks})

    app = Starlette(
        routes=[*PROVIDER_ROUTES, *CONTROL_ROUTES],
        exception_handlers={ControlError: control_error},
        lifespan=lifespan,
    )
    app.state.emulator = state
    return app
