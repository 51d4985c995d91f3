"""The objects one emulator instance shares between its routes."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from topcoins.emulator.calls import CallLog
from topcoins.emulator.config import EmulatorConfig
from topcoins.emulator.faults import FaultBook
from topcoins.emulator.market import Market

__all__ = ["EmulatorState", "emulator_state"]


@dataclass
class EmulatorState:
    """Configuration, market, injected faults and the call log of one emulator app."""

    config: EmulatorConfig
    market: Market
    faults: FaultBook
    calls: CallLog


def emulator_state(request: Request) -> EmulatorState:
    """The state of the app serving ``request`` (set by ``create_app``)."""
    state: EmulatorState = request.app.state.emulator
    return state
