"""Emulator test fixtures: an app factory and an httpx client bound to the app in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from topcoins.emulator import EmulatorConfig, create_app
from topcoins.emulator.state import EmulatorState

CMC_KEY = "test-cmc-key"
CC_KEY = "test-cc-key"
CMC_HEADERS = {"X-CMC_PRO_API_KEY": CMC_KEY}


class FakeClock:
    """Seconds that stand still at ``now`` until a test moves them."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_app() -> Callable[..., Starlette]:
    """``make_app(**config_overrides)``: an emulator without drift and with a CMC key."""

    def factory(**overrides: Any) -> Starlette:
        values: dict[str, Any] = {"tick_seconds": 0, "cmc_api_key": CMC_KEY, **overrides}
        return create_app(EmulatorConfig(**values))

    return factory


@pytest.fixture
def app(make_app: Callable[..., Starlette]) -> Starlette:
    return make_app()


@pytest.fixture
def emulator(app: Starlette) -> EmulatorState:
    """The in-process ground truth of ``app``."""
    state: EmulatorState = app.state.emulator
    return state


def client_for(app: Starlette) -> httpx.AsyncClient:
    """An httpx client that calls ``app`` in-process (no lifespan, so no drift task)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emulator")


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client
