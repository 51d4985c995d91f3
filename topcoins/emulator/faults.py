"""Injected provider faults: which misbehaviour the next calls to a provider get.

A fault lasts for its next ``count`` calls, for ``seconds`` seconds, or (neither given)
until replaced or cleared with mode ``none``; with both, whichever ends first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MODES", "PROVIDERS", "Fault", "FaultBook", "parse_fault_request"]

PROVIDERS = ("coinmarketcap", "cryptocompare")
MODES = ("rate_limit", "auth", "server_error", "timeout", "slow", "malformed", "none")
_DEFAULT_DELAY = {"timeout": 30.0, "slow": 2.0}
_SERVER_ERRORS = (500, 502, 503)


@dataclass
class Fault:
    """One active fault. ``remaining`` counts calls left; ``until`` is a monotonic deadline."""

    mode: str
    remaining: int | None = None
    until: float | None = None
    delay: float = 0.0
    status: int = 500

    def describe(self, now: float) -> dict[str, Any]:
        """JSON view: mode, calls left, seconds left, delay and (server_error) HTTP status."""
        seconds_left = None if self.until is None else max(0.0, round(self.until - now, 3))
        return {
            "mode": self.mode,
            "count": self.remaining,
            "seconds": seconds_left,
            "delay": self.delay,
            "status": self.status if self.mode == "server_error" else None,
        }


def parse_fault_request(payload: Any, now: float) -> tuple[tuple[str, ...], Fault | None]:
    """Validate a ``POST /_emulator/faults`` body; return the providers and the fault
    (None = clear). Raises ``ValueError`` with a message that says what to fix."""
    if not isinstance(payload, Mapping):
        raise ValueError("the body must be a JSON object")
    provider, mode = payload.get("provider"), payload.get("mode")
    if provider not in (*PROVIDERS, "both"):
        raise ValueError(f"provider must be one of {', '.join(PROVIDERS)} or both")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    providers = PROVIDERS if provider == "both" else (provider,)
    if mode == "none":
        return providers, None
    count, seconds = payload.get("count"), payload.get("seconds")
    delay = payload.get("delay", _DEFAULT_DELAY.get(mode, 0.0))
    status = payload.get("status", 500)
    if count is not None and not (type(count) is int and count > 0):
        raise ValueError("count must be an integer greater than 0 (or absent: no call limit)")
    for name, value in (("seconds", seconds), ("delay", delay)):
        if value is not None and not (type(value) in (int, float) and value >= 0):
            raise ValueError(f"{name} must be a number of seconds, 0 or more")
    if status not in _SERVER_ERRORS:
        raise ValueError(f"status must be one of {', '.join(map(str, _SERVER_ERRORS))}")
    until = None if seconds is None else now + seconds
    return providers, Fault(mode, count, until, float(delay), status)


class FaultBook:
    """The active fault per provider."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._faults: dict[str, Fault] = {}

    def set(self, providers: tuple[str, ...], fault: Fault | None) -> None:
        """Install ``fault`` for ``providers`` (a copy each), or clear them with None."""
        for provider in providers:
            if fault is None:
                self._faults.pop(provider, None)
            else:
                self._faults[provider] = Fault(**vars(fault))

    def take(self, provider: str) -> Fault | None:
        """The fault this call to ``provider`` gets, if any; uses up one of its calls."""
        fault = self._faults.get(provider)
        if fault is None:
            return None
        if fault.until is not None and self.monotonic() >= fault.until:
            del self._faults[provider]
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self._faults[provider]
        return fault

    def describe(self) -> dict[str, Any]:
        """Active faults by provider (expired ones are dropped first)."""
        now = self.monotonic()
        for provider, fault in list(self._faults.items()):
            if fault.until is not None and now >= fault.until:
                del self._faults[provider]
        return {p: self._faults[p].describe(now) if p in self._faults else None for p in PROVIDERS}
