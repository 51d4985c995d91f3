"""CoinMarketCap Pro API client: the latest listings, priced in USD, as one ``PriceSnapshot``."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from topcoins.producers import _parse
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

__all__ = ["LISTINGS_PATH", "MAX_PAGE_SIZE", "PROVIDER", "CoinMarketCapClient"]

logger = logging.getLogger(__name__)

PROVIDER = "coinmarketcap"
LISTINGS_PATH = "/v1/cryptocurrency/listings/latest"
MAX_PAGE_SIZE = 5000  # the endpoint's largest `limit`

_KEY_ENV = ENV_DOCS["cmc_api_key"].name
_AUTH_CODES = frozenset({1001, 1002, 1003, 1004, 1005, 1006, 1007})
# error_code -> seconds until that limit resets, used when there is no Retry-After header.
_RATE_LIMIT_RESETS: dict[int, float | None] = {
    1008: 60.0,  # per-minute limit
    1009: 86400.0,  # daily limit
    1010: 30 * 86400.0,  # monthly credits
    1011: None,  # IP limit: reset not documented
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class CoinMarketCapClient:
    """Reads ``/v1/cryptocurrency/listings/latest`` through a given ``httpx.AsyncClient``.

    The client must carry ``base_url`` and a timeout; the key travels in the
    ``X-CMC_PRO_API_KEY`` header only, never in the URL.
    """

    provider = PROVIDER

    def __init__(
        self, http: httpx.AsyncClient, api_key: str, *, now: Callable[[], datetime] = _utcnow
    ) -> None:
        self._http = http
        self._api_key = api_key
        self._now = now

    def __repr__(self) -> str:
        return f"CoinMarketCapClient(base_url={str(self._http.base_url)!r})"

    async def fetch_listings(self, depth: int) -> PriceSnapshot:
        """The first ``depth`` listings by market cap, in provider order, unique by id.

        Pages of at most 5000 (``start``/``limit``) until ``depth`` is covered or the
        provider runs out. Raises an ``UpstreamError`` subclass on any failure.
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
        return PriceSnapshot(
            snapshot_id=uuid.uuid4().hex,
            fetched_at=utc_millis(self._now()),
            total_count=total_count,
            quotes=tuple(quotes.values()),
        )

    async def _fetch_page(self, start: int, limit: int) -> tuple[list[PriceQuote], int | None]:
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["X-CMC_PRO_API_KEY"] = self._api_key
        response = await get(
            self._http,
            LISTINGS_PATH,
            params={"start": start, "limit": limit, "convert": "USD", "sort": "market_cap"},
            headers=headers,
            provider=PROVIDER,
        )
        body = self._body(response)
        self._raise_for_error(response, body)
        page, total_count = _parse_page(body, start)
        logger.debug(
            "coinmarketcap page",
            extra={"provider": PROVIDER, "start": start, "limit": limit, "items": len(page)},
        )
        return page, total_count

    def _body(self, response: httpx.Response) -> Any:
        """Parsed JSON; an error status with a non-JSON body yields ``None`` (mapped by status)."""
        try:
            return parse_json(response, provider=PROVIDER)
        except BadResponseError:
            if response.is_success:
                raise
            return None

    def _raise_for_error(self, response: httpx.Response, body: Any) -> None:
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
        where = f"{PROVIDER}: GET {LISTINGS_PATH}"
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
