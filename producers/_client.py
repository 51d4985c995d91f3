"""What both provider clients share: an injected HTTP client, the key, a pacer and a clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar

import httpx

from topcoins.producers.ratelimit import Pacer


def utcnow() -> datetime:
    """The current time in UTC (the clients' default clock)."""
    return datetime.now(UTC)


class ProviderClient:
    """Base of the provider clients; ``repr`` shows the base URL and never the key."""

    provider: ClassVar[str]

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_key: str,
        *,
        pacer: Pacer | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._http = http
        self._api_key = api_key
        self._pacer = pacer or Pacer(self.provider)
        self._now = now

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self._http.base_url)!r})"
