"""What both provider clients share: an injected HTTP client, the key, a pacer, a clock and
the count of dropped items."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import ClassVar

import httpx

from topcoins.producers._parse import OutOfRange
from topcoins.producers.ratelimit import Pacer

logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    """The current time in UTC (the clients' default clock)."""
    return datetime.now(UTC)


class ProviderClient:
    """Base of the provider clients; ``repr`` shows the base URL and never the key.

    ``on_drop(reason)`` is called once per item left out of an answer because the records
    cannot carry one of its values (``_parse.OutOfRange``); the producers count it.
    ``on_null(reason)`` is called once per optional value (a market cap, a 24 h change) that
    was out of range and is carried as ``None`` instead, its item kept.
    """

    provider: ClassVar[str]

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_key: str,
        *,
        pacer: Pacer | None = None,
        now: Callable[[], datetime] = utcnow,
        on_drop: Callable[[str], None] | None = None,
        on_null: Callable[[str], None] | None = None,
    ) -> None:
        self._http = http
        self._api_key = api_key
        self._pacer = pacer or Pacer(self.provider)
        self._now = now
        self._on_drop = on_drop
        self._on_null = on_null

    def _dropped(self, where: str, dropped: Sequence[OutOfRange]) -> None:
        """Count each dropped item by reason (``on_drop``) and log one line per answer."""
        if not dropped:
            return
        reasons = Counter(error.reason for error in dropped)
        if self._on_drop is not None:
            for error in dropped:
                self._on_drop(error.reason)
        logger.warning(
            "dropped items the records cannot carry",
            extra={
                "provider": self.provider,
                "where": where,
                "dropped": dict(reasons),
                "first": str(dropped[0]),
            },
        )

    def _nulled(self, where: str, nulled: Sequence[OutOfRange]) -> None:
        """Count each value carried as ``None`` by reason (``on_null``); one log line per answer."""
        if not nulled:
            return
        if self._on_null is not None:
            for error in nulled:
                self._on_null(error.reason)
        logger.warning(
            "optional values out of range, carried as null",
            extra={
                "provider": self.provider,
                "where": where,
                "nulled": dict(Counter(error.reason for error in nulled)),
                "first": str(nulled[0]),
            },
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self._http.base_url)!r})"
