"""What both provider clients share: an injected HTTP client, the key, a pacer, ``now``, the
paced call that maps an answer to a body or an error, and the count of dropped items."""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from topcoins.producers._http import get, parse_json
from topcoins.producers._parse import OutOfRange
from topcoins.producers.errors import BadResponseError, RateLimitError
from topcoins.producers.ratelimit import Pacer

logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    """The current time in UTC (the clients' default ``now``)."""
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

    def _key_headers(self) -> dict[str, str]:
        """The headers that carry ``api_key`` (sent only when there is a key)."""
        raise NotImplementedError

    async def _paced_get(
        self, path: str, params: Mapping[str, str | int], credits: int = 1
    ) -> httpx.Response:
        """``GET path`` once ``pacer`` lets a call of ``credits`` through."""
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers.update(self._key_headers())
        await self._pacer.acquire(credits)
        return await get(self._http, path, params=params, headers=headers, provider=self.provider)

    def _body(self, response: httpx.Response) -> Any:
        """Parsed JSON; an error status with a non-JSON body yields ``None`` (mapped by status)."""
        try:
            return parse_json(response, provider=self.provider)
        except BadResponseError:
            if response.is_success:
                raise
            return None

    @contextlib.contextmanager
    def _holding_on_rate_limit(self) -> Iterator[None]:
        """A ``RateLimitError`` raised inside with a known ``retry_after`` holds the pacer
        until then, and propagates."""
        try:
            yield
        except RateLimitError as error:
            if error.retry_after is not None:
                self._pacer.hold(error.retry_after)
            raise

    def _dropped(self, where: str, dropped: Sequence[OutOfRange]) -> None:
        """Count each dropped item by reason (``on_drop``) and log one line per answer."""
        self._count(
            where, dropped, self._on_drop, "dropped", "dropped items the records cannot carry"
        )

    def _nulled(self, where: str, nulled: Sequence[OutOfRange]) -> None:
        """Count each value carried as ``None`` by reason (``on_null``); one log line per answer."""
        self._count(
            where, nulled, self._on_null, "nulled", "optional values out of range, carried as null"
        )

    def _count(
        self,
        where: str,
        errors: Sequence[OutOfRange],
        on_error: Callable[[str], None] | None,
        field: str,
        message: str,
    ) -> None:
        if not errors:
            return
        if on_error is not None:
            for error in errors:
                on_error(error.reason)
        logger.warning(
            message,
            extra={
                "provider": self.provider,
                "where": where,
                field: dict(Counter(error.reason for error in errors)),
                "first": str(errors[0]),
            },
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self._http.base_url)!r})"
