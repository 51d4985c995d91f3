"""CoinMarketCap Pro API client: the latest listings, or quotes by id, priced in USD.

Credits (the price list ``budget.py`` plans with): a listings call costs 1 credit per 200
coins asked for, a quotes call 1 credit per 100 ids, both rounded up per call.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from topcoins.producers import _parse
from topcoins.producers._client import ProviderClient
from topcoins.producers._http import get, parse_json, parse_retry_after, redact
from topcoins.producers.errors import (
    AuthError,
    BadResponseError,
    ParameterError,
    RateLimitError,
    ServerError,
)
from topcoins.schemas.records import PriceQuote, PriceSnapshot, utc_millis
from topcoins.settings import ENV_DOCS

__all__ = [
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

PROVIDER = "coinmarketcap"
LISTINGS_PATH = "/v1/cryptocurrency/listings/latest"
QUOTES_PATH = "/v2/cryptocurrency/quotes/latest"
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
            page, total_count = await self._fetch_page(start, limit)
            for quote in page:
                quotes.setdefault(quote.cmc_id, quote)
            if len(page) < limit or (total_count is not None and start + limit > total_count):
                break
            start += limit
        if not quotes:
            raise BadResponseError(
                f"{PROVIDER}: GET {LISTINGS_PATH} answered no listings at all", provider=PROVIDER
            )
        return PriceSnapshot(
            snapshot_id=uuid.uuid4().hex,
            fetched_at=utc_millis(self._now()),
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
            quotes.update(_parse_quotes(body, batch))
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

    async def _fetch_page(self, start: int, limit: int) -> tuple[list[PriceQuote], int | None]:
        params = {"start": start, "limit": limit, "convert": "USD", "sort": "market_cap"}
        body = await self._call(LISTINGS_PATH, params, listing_credits(limit))
        page, total_count = _parse_page(body, start)
        expected = limit if total_count is None else min(limit, total_count - start + 1)
        if total_count is not None and len(page) < expected:
            raise BadResponseError(
                f"{PROVIDER}: GET {LISTINGS_PATH} answered a partial page: {len(page)} "
                f"listings from #{start} where total_count {total_count} promises {expected}",
                provider=PROVIDER,
            )
        logger.debug(
            "coinmarketcap page",
            extra={"provider": PROVIDER, "start": start, "limit": limit, "items": len(page)},
        )
        return page, total_count

    async def _call(self, path: str, params: dict[str, str | int], credits: int) -> Any:
        """One paced ``GET``: the parsed body of a successful answer, or an ``UpstreamError``."""
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["X-CMC_PRO_API_KEY"] = self._api_key
        await self._pacer.acquire(credits)
        response = await get(self._http, path, params=params, headers=headers, provider=PROVIDER)
        body = self._body(response)
        try:
            self._raise_for_error(response, body, path)
        except RateLimitError as error:
            if error.retry_after is not None:
                self._pacer.hold(error.retry_after)
            raise
        return body

    def _body(self, response: httpx.Response) -> Any:
        """Parsed JSON; an error status with a non-JSON body yields ``None`` (mapped by status)."""
        try:
            return parse_json(response, provider=PROVIDER)
        except BadResponseError:
            if response.is_success:
                raise
            return None

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


def _parse_page(body: Any, start: int) -> tuple[list[PriceQuote], int | None]:
    """The quotes and ``status.total_count`` of one successful page."""
    where = f"{PROVIDER}: GET {LISTINGS_PATH}"
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise BadResponseError(f"{where} answered without a data array", provider=PROVIDER)
    status = body.get("status")
    try:
        if status is not None and not isinstance(status, dict):
            raise ValueError("status must be an object")
        total_count = _parse.optional_int((status or {}).get("total_count"), "total_count")
    except ValueError as exc:
        raise BadResponseError(f"{where}: {exc}", provider=PROVIDER) from exc
    quotes = []
    for index, item in enumerate(body["data"]):
        try:
            quotes.append(_parse_quote(item))
        except ValueError as exc:
            raise BadResponseError(
                f"{where}: listing #{start + index} is invalid: {exc}", provider=PROVIDER
            ) from exc
    return quotes, total_count


def _parse_quotes(body: Any, asked: Sequence[int]) -> dict[int, PriceQuote]:
    """The quotes of one successful quotes answer (``data`` keyed by id), by id."""
    where = f"{PROVIDER}: GET {QUOTES_PATH}"
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise BadResponseError(f"{where} answered without a data object", provider=PROVIDER)
    wanted = set(asked)
    quotes: dict[int, PriceQuote] = {}
    for key, item in body["data"].items():
        try:
            quote = _parse_quote(item)
            if str(quote.cmc_id) != key:
                raise ValueError(f"id {quote.cmc_id} is filed under {key!r}")
            if quote.cmc_id not in wanted:
                raise ValueError(f"id {quote.cmc_id} was not asked for")
        except ValueError as exc:
            raise BadResponseError(
                f"{where}: quote {key[:20]!r} is invalid: {exc}", provider=PROVIDER
            ) from exc
        quotes[quote.cmc_id] = quote
    return quotes


def _parse_quote(item: Any) -> PriceQuote:
    """One ``data[]`` entry; a missing or null USD price stays ``None``."""
    if not isinstance(item, dict):
        raise ValueError("listing must be an object")
    quote = item.get("quote")
    if quote is not None and not isinstance(quote, dict):
        raise ValueError("quote must be an object")
    usd = (quote or {}).get("USD")
    if usd is not None and not isinstance(usd, dict):
        raise ValueError("quote.USD must be an object")
    usd = usd or {}
    last_updated = usd.get("last_updated") or item.get("last_updated")
    return PriceQuote(
        cmc_id=_parse.require_int(item.get("id"), "id"),
        symbol=_parse.require_str(item.get("symbol"), "symbol"),
        name=_parse.require_str(item.get("name"), "name"),
        slug=_parse.require_str(item.get("slug"), "slug"),
        cmc_rank=_parse.optional_int(item.get("cmc_rank"), "cmc_rank"),
        price_usd=_parse.optional_number(usd.get("price"), "quote.USD.price"),
        volume_24h_usd=_parse.optional_number(usd.get("volume_24h"), "quote.USD.volume_24h"),
        last_updated=_parse.optional_timestamp(last_updated, "last_updated"),
    )
