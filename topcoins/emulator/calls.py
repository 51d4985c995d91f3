"""A log of provider calls, so tests can check that clients kept within rate limits."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CallLog"]

_CREDIT_HORIZON = 32 * 86400.0  # seconds: longer than any month


@dataclass
class _Endpoint:
    count: int = 0
    recent: deque[float] = field(default_factory=deque)


class CallLog:
    """Counts every provider call per endpoint and keeps the last ``keep`` unix times, and
    the CoinMarketCap credits charged (for ``/v1/key/info``)."""

    def __init__(self, keep: int = 1000, unix_now: Callable[[], float] = time.time) -> None:
        self.keep = keep
        self.unix_now = unix_now
        self._endpoints: dict[tuple[str, str], _Endpoint] = {}
        self._credits: deque[tuple[float, int]] = deque()

    def record(self, provider: str, path: str) -> None:
        """Count one call to ``path`` of ``provider``, now."""
        endpoint = self._endpoints.setdefault(
            (provider, path), _Endpoint(recent=deque(maxlen=self.keep))
        )
        endpoint.count += 1
        endpoint.recent.append(self.unix_now())

    def charge(self, credits: int) -> None:
        """Record ``credits`` CoinMarketCap credits charged now (kept for 32 days)."""
        now = self.unix_now()
        while self._credits and self._credits[0][0] < now - _CREDIT_HORIZON:
            self._credits.popleft()
        if credits:
            self._credits.append((now, credits))

    def credits_since(self, moment: float) -> int:
        """CoinMarketCap credits charged at or after the unix time ``moment``."""
        return sum(credits for at, credits in self._credits if at >= moment)

    def calls_made(self, provider: str) -> dict[str, int]:
        """Calls to ``provider`` per window, shaped like CryptoCompare's ``calls_made``."""
        now = self.unix_now()
        endpoints = [e for (p, _), e in self._endpoints.items() if p == provider]
        total = sum(e.count for e in endpoints)

        def within(seconds: float) -> int:
            return sum(1 for e in endpoints for t in e.recent if now - t < seconds)

        windows = {"second": within(1), "minute": within(60), "hour": within(3600)}
        return windows | {"day": total, "month": total, "total_calls": total}

    def snapshot(self) -> dict[str, Any]:
        """``{provider: {path: {"count": n, "recent": [unix seconds, oldest first]}}}``."""
        out: dict[str, Any] = {"coinmarketcap": {}, "cryptocompare": {}}
        for (provider, path), endpoint in sorted(self._endpoints.items()):
            out.setdefault(provider, {})[path] = {
                "count": endpoint.count,
                "recent": list(endpoint.recent),
            }
        return out

    def clear(self) -> None:
        """Forget every call and every credit charged."""
        self._endpoints.clear()
        self._credits.clear()
