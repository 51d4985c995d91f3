"""CoinMarketCap Pro API client: the latest listings, or quotes by id, priced in USD.

Credits (the price list ``budget.py`` plans with): a listings call costs 1 credit per 200
coins asked for, a quotes call 1 credit per 100 ids, both rounded up per call.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx

from topcoins.producers import _parse
from topcoins.producers._client import ProviderClient
from topcoins.producers._http import parse_retry_after, redact
from topcoins.producers.coinmarketcap_answers import (
    LISTINGS_PATH,
    PROVIDER,
    QUOTES_PATH,
    KeyInfo,
    credit_count,
    parse_key_info,
    parse_listings_page,
    parse_quotes,
)
from topcoins.producers.errors import (
    AuthError,
    BadResponseError,
    ParameterError,
    RateLimitError,
    ServerError,
)
from topcoins.producers.metrics import timed_stage
from topcoins.schemas.records import PriceQuote, PriceSnapshot, utc_millis
from topcoins.settings import ENV_DOCS

__all__ = [
    "KEY_INFO_PATH",
    "LISTINGS_PATH",
    "MAX_PAGE_SIZE",
    "PROVIDER",
    "QUOTES_BATCH",
    "QUOTES_PATH",
    "CoinMarketCapClient",
    "listing_credits",
    "listing_page_limits",
    "quotes_batch_sizes",
    "quotes_credits",
]

logger = logging.getLogger(__name__)

KEY_INFO_PATH = "/v1/key/info"  # costs no credit
MAX_PAGE_SIZE = 5000  # the listings endpoint's largest `limit`
QUOTES_BATCH = 500  # ids per quotes call: about 4 KB of URL, well below common limits
_COINS_PER_CREDIT = 200  # listings
_IDS_PER_CREDIT = 100  # quotes

_KEY_ENV = ENV_DOCS["cmc_api_key"].name
_AUTH_CODES = frozenset({1001, 1002, 1003, 1004, 1005, 1006, 1007})
# error_code -> seconds until that limit resets, used when there is no Retry-After header.
_RATE_LIMIT_RESETS: dict[int, float | None] = {
    1008: 60.0,  # per-minute limit
    1009: 86400.0,  # daily limit
    1010: 30 * 86400.0,  # monthly credits
    1011: None,  # IP limit: reset not documented
}


def listing_credits(limit: int) -> int:
    """Credits one listings call with ``limit`` costs."""
    return math.ceil(limit / _COINS_PER_CREDIT)


def quotes_credits(count: int) -> int:
    """Credits one quotes call for ``count`` ids costs."""
    return math.ceil(count / _IDS_PER_CREDIT)


def listing_page_limits(depth: int) -> list[int]:
    """The ``limit`` of each listings call ``fetch_listings(depth)`` makes at most."""
    return [min(MAX_PAGE_SIZE, depth - start) for start in range(0, depth, MAX_PAGE_SIZE)]


def quotes_batch_sizes(count: int) -> list[int]:
    """The number of ids in each quotes call ``fetch_quotes`` makes for ``count`` ids."""
    return [min(QUOTES_BATCH, count - start) for start in range(0, count, QUOTES_BATCH)]


class CoinMarketCapClient(ProviderClient):
    """Reads listings and quotes through a given ``httpx.AsyncClient``.

    The client must carry ``base_url`` and a timeout; the key travels in the
    ``X-CMC_PRO_API_KEY`` header only, never in the URL. Every call (each page, each
    retry) first passes ``pacer`` at its credit price; a rate-limit answer with a known
    reset time holds the pacer until then.
    """

    provider = PROVIDER
    # Sum of ``status.credit_count`` over this client's successful answers (set per instance).
    credits_used: int = 0
    _answered_at: datetime | None = None

    async def fetch_listings(self, depth: int) -> PriceSnapshot:
        """The first ``depth`` listings by market cap, in provider order, unique by id.

        Pages of at most 5000 (``start``/``limit``) until ``depth`` is covered or the
        provider runs out. A page shorter than ``status.total_count`` says it should be, or
        no listing at all, is a partial answer (``BadResponseError``). Raises an
        ``UpstreamError`` subclass on any failure.
        """
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        quotes: dict[int, PriceQuote] = {}
        total_count: int | None = None
        start = 1
        while start <= depth:
            limit = min(MAX_PAGE_SIZE, depth - start + 1)
            page, total_count, answered = await self._fetch_page(start, limit)
            for quote in page:
                quotes.setdefault(quote.cmc_id, quote)
            if answered < limit or (total_count is not None and start + limit > total_count):
                break
            start += limit
        if not quotes:
            raise BadResponseError(
                f"{PROVIDER}: GET {LISTINGS_PATH} answered no listings at all", provider=PROVIDER
            )
        return PriceSnapshot(
            snapshot_id=uuid.uuid4().hex,
            fetched_at=utc_millis(self._answered_at or self._now()),
            total_count=total_count,
            quotes=tuple(quotes.values()),
        )

    async def fetch_quotes(self, ids: Sequence[int]) -> tuple[PriceQuote, ...]:
        """The latest USD quotes of ``ids``, in that order, by ``/v2/.../quotes/latest``.

        Calls of at most ``QUOTES_BATCH`` ids with ``skip_invalid=true``: an id the
        provider no longer knows is left out (the caller keeps its older quote), but an
        answer holding none of the ids, or an id nobody asked for, is rejected.
        """
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            raise ValueError("fetch_quotes needs at least one id")
        quotes: dict[int, PriceQuote] = {}
        for first in range(0, len(wanted), QUOTES_BATCH):
            batch = wanted[first : first + QUOTES_BATCH]
            params = {
                "id": ",".join(str(cmc_id) for cmc_id in batch),
                "convert": "USD",
                "skip_invalid": "true",
            }
            body = await self._call(QUOTES_PATH, params, quotes_credits(len(batch)))
            dropped: list[_parse.OutOfRange] = []
            nulled: list[_parse.OutOfRange] = []
            with timed_stage(PROVIDER, "validate"):
                quotes.update(parse_quotes(body, batch, dropped, nulled))
            self._dropped(QUOTES_PATH, dropped)
            self._nulled(QUOTES_PATH, nulled)
        where = f"{PROVIDER}: GET {QUOTES_PATH}"
        if not quotes:
            raise BadResponseError(
                f"{where} answered none of the {len(wanted)} ids asked for", provider=PROVIDER
            )
        missing = len(wanted) - len(quotes)
        if missing:
            logger.info(
                "quotes answer left out ids",
                extra={"provider": PROVIDER, "asked": len(wanted), "missing": missing},
            )
        return tuple(quotes[cmc_id] for cmc_id in wanted if cmc_id in quotes)

    async def fetch_key_info(self) -> KeyInfo:
        """The key's plan and usage by ``/v1/key/info`` (paced like any call, at 0 credits)."""
        body = await self._call(KEY_INFO_PATH, {}, 0)
        try:
            return parse_key_info(body)
        except ValueError as exc:
            raise BadResponseError(
                f"{PROVIDER}: GET {KEY_INFO_PATH}: {exc}", provider=PROVIDER
            ) from exc

    async def _fetch_page(self, start: int, limit: int) -> tuple[list[PriceQuote], int | None, int]:
        """The valid quotes of one page, ``total_count``, and how many listings it answered
        (dropped ones included)."""
        params = {"start": start, "limit": limit, "convert": "USD", "sort": "market_cap"}
        body = await self._call(LISTINGS_PATH, params, listing_credits(limit))
        dropped: list[_parse.OutOfRange] = []
        nulled: list[_parse.OutOfRange] = []
        with timed_stage(PROVIDER, "validate"):
            page, total_count = parse_listings_page(body, start, dropped, nulled)
        self._dropped(LISTINGS_PATH, dropped)
        self._nulled(LISTINGS_PATH, nulled)
        answered = len(page) + len(dropped)
        expected = limit if total_count is None else min(limit, total_count - start + 1)
        if total_count is not None and answered < expected:
            raise BadResponseError(
                f"{PROVIDER}: GET {LISTINGS_PATH} answered a partial page: {answered} "
                f"listings from #{start} where total_count {total_count} promises {expected}",
                provider=PROVIDER,
            )
        logger.debug(
            "coinmarketcap page",
            extra={"provider": PROVIDER, "start": start, "limit": limit, "items": len(page)},
        )
        return page, total_count, answered

    def _key_headers(self) -> dict[str, str]:
        return {"X-CMC_PRO_API_KEY": self._api_key}

    async def _call(self, path: str, params: dict[str, str | int], credits: int) -> Any:
        """One paced ``GET``: the parsed body of a successful answer, or an ``UpstreamError``."""
        response = await self._paced_get(path, params, credits)
        # A listing's fetched_at: when its (last) answer arrived, before parsing it.
        self._answered_at = self._now()
        body = self._body(response)
        with self._holding_on_rate_limit():
            self._raise_for_error(response, body, path)
        self.credits_used += credit_count(body)
        return body

    def _raise_for_error(self, response: httpx.Response, body: Any, path: str) -> None:
        """Map ``status.error_code`` (checked even on HTTP 200) and the HTTP status to errors."""
        status = body.get("status") if isinstance(body, dict) else None
        code = status.get("error_code") if isinstance(status, dict) else None
        http_status = response.status_code
        if code in (None, 0) and response.is_success:
            return
        message = status.get("error_message") if isinstance(status, dict) else None
        detail = f"HTTP {http_status}"
        if code is not None:
            detail += f", error_code {code}: {redact(str(message), self._api_key)}"
        where = f"{PROVIDER}: GET {path}"
        if code in _AUTH_CODES or http_status in (401, 402, 403):
            raise AuthError(
                f"{where} refused the API key ({detail}); set {_KEY_ENV} to a valid, "
                "active key whose plan includes this endpoint",
                provider=PROVIDER,
            )
        if code in _RATE_LIMIT_RESETS or http_status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None and isinstance(code, int):
                retry_after = _RATE_LIMIT_RESETS.get(code)
            raise RateLimitError(
                f"{where} is rate limited ({detail})", provider=PROVIDER, retry_after=retry_after
            )
        if http_status >= 500 or (isinstance(code, int) and 500 <= code < 600):
            raise ServerError(
                f"{where} failed on the provider side ({detail})",
                provider=PROVIDER,
                status_code=http_status,
            )
        if http_status == 400 or code == 400:
            raise ParameterError(f"{where} rejected a parameter ({detail})", provider=PROVIDER)
        raise BadResponseError(
            f"{where} answered an unexpected error ({detail})", provider=PROVIDER
        )
