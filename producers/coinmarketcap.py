"""CoinMarketCap Pro API client: the latest listings, or quotes by id, priced in USD.

Credits (the price list ``budget.py`` plans with): a listings call costs 1 credit per 200
coins asked for, a quotes call 1 credit per 100 ids, both rounded up per call.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
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
    "KeyInfo",
    "listing_credits",
    "listing_page_limits",
    "quotes_batch_sizes",
    "quotes_credits",
]

logger = logging.getLogger(__name__)

PROVIDER = "coinmarketcap"
LISTINGS_PATH = "/v1/cryptocurrency/listings/latest"
QUOTES_PATH = "/v2/cryptocurrency/quotes/latest"
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
                quotes.update(_parse_quotes(body, batch, dropped, nulled))
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
            return _parse_key_info(body)
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
            page, total_count = _parse_page(body, start, dropped, nulled)
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

    async def _call(self, path: str, params: dict[str, str | int], credits: int) -> Any:
        """One paced ``GET``: the parsed body of a successful answer, or an ``UpstreamError``."""
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["X-CMC_PRO_API_KEY"] = self._api_key
        await self._pacer.acquire(credits)
        response = await get(self._http, path, params=params, headers=headers, provider=PROVIDER)
        # A listing's fetched_at: when its (last) answer arrived, before parsing it.
        self._answered_at = self._now()
        body = self._body(response)
        try:
            self._raise_for_error(response, body, path)
        except RateLimitError as error:
            if error.retry_after is not None:
                self._pacer.hold(error.retry_after)
            raise
        self.credits_used += _credit_count(body)
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


def _parse_page(
    body: Any, start: int, dropped: list[_parse.OutOfRange], nulled: list[_parse.OutOfRange]
) -> tuple[list[PriceQuote], int | None]:
    """The quotes and ``status.total_count`` of one successful page; a listing the records
    cannot carry is left out and its error appended to ``dropped`` (``nulled``: see
    ``_parse_quote``)."""
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
            quotes.append(_parse_quote(item, nulled))
        except _parse.OutOfRange as exc:
            dropped.append(exc)
        except ValueError as exc:
            raise BadResponseError(
                f"{where}: listing #{start + index} is invalid: {exc}", provider=PROVIDER
            ) from exc
    return quotes, total_count


def _parse_quotes(
    body: Any,
    asked: Sequence[int],
    dropped: list[_parse.OutOfRange],
    nulled: list[_parse.OutOfRange],
) -> dict[int, PriceQuote]:
    """The quotes of one successful quotes answer (``data`` keyed by id), by id; a quote
    the records cannot carry is left out (the caller keeps its older one) and its error
    appended to ``dropped``."""
    where = f"{PROVIDER}: GET {QUOTES_PATH}"
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise BadResponseError(f"{where} answered without a data object", provider=PROVIDER)
    wanted = set(asked)
    quotes: dict[int, PriceQuote] = {}
    for key, item in body["data"].items():
        try:
            quote = _parse_quote(item, nulled)
            if str(quote.cmc_id) != key:
                raise ValueError(f"id {quote.cmc_id} is filed under {key!r}")
            if quote.cmc_id not in wanted:
                raise ValueError(f"id {quote.cmc_id} was not asked for")
        except _parse.OutOfRange as exc:
            dropped.append(exc)
            continue
        except ValueError as exc:
            raise BadResponseError(
                f"{where}: quote {key[:20]!r} is invalid: {exc}", provider=PROVIDER
            ) from exc
        quotes[quote.cmc_id] = quote
    return quotes


def _parse_quote(item: Any, nulled: list[_parse.OutOfRange]) -> PriceQuote:
    """One ``data[]`` entry; a missing or null USD price stays ``None``.

    A market cap or 24 h change that is not finite, a negative market cap or a change
    below -100 % is carried as ``None`` (the quote stands) and its error appended to
    ``nulled``; a value of the wrong type rejects the answer like any other.
    """
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
        symbol=_parse.require_symbol(item.get("symbol"), "symbol"),
        name=_parse.require_name(item.get("name"), "name"),
        slug=_parse.require_name(item.get("slug"), "slug"),
        cmc_rank=_parse.optional_int(item.get("cmc_rank"), "cmc_rank"),
        price_usd=_parse.optional_number(usd.get("price"), "quote.USD.price"),
        volume_24h_usd=_parse.optional_number(
            usd.get("volume_24h"), "quote.USD.volume_24h", volume=True
        ),
        last_updated=_parse.optional_timestamp(last_updated, "last_updated"),
        market_cap_usd=_or_null(
            usd.get("market_cap"), "quote.USD.market_cap", 0.0, "negative_market_cap", nulled
        ),
        percent_change_24h=_or_null(
            usd.get("percent_change_24h"),
            "quote.USD.percent_change_24h",
            -100.0,
            "number_out_of_range",
            nulled,
        ),
    )


def _or_null(
    value: Any, name: str, minimum: float, reason: str, nulled: list[_parse.OutOfRange]
) -> float | None:
    """An optional number of at least ``minimum``; out of range: ``None``, noted in ``nulled``."""
    try:
        return _parse.optional_number_at_least(value, name, minimum, reason)
    except _parse.OutOfRange as exc:
        nulled.append(exc)
        return None


def _credit_count(body: Any) -> int:
    """``status.credit_count`` of an answer, 0 when absent or not an integer."""
    status = body.get("status") if isinstance(body, dict) else None
    count = status.get("credit_count") if isinstance(status, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else 0


@dataclass(frozen=True)
class KeyInfo:
    """``/v1/key/info``: the plan and the key's usage; None where the answer has no value."""

    credit_limit_monthly: int
    credit_limit_monthly_reset_at: datetime | None
    rate_limit_minute: int | None
    requests_made_minute: int | None
    requests_left_minute: int | None
    credits_used_day: int | None
    credits_left_day: int | None
    credits_used_month: int | None
    credits_left_month: int | None


def _parse_key_info(body: Any) -> KeyInfo:
    """The ``data`` of a successful key info answer; raises ``ValueError`` when malformed."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise ValueError("answered without a data object")
    plan, usage = data.get("plan"), data.get("usage")
    if not isinstance(plan, dict) or not isinstance(usage, dict):
        raise ValueError("data must hold a plan object and a usage object")

    def period(name: str) -> dict[str, Any]:
        value = usage.get(name)
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"usage.{name} must be an object")
        return value or {}

    minute, day, month = period("current_minute"), period("current_day"), period("current_month")
    return KeyInfo(
        credit_limit_monthly=_parse.require_int(
            plan.get("credit_limit_monthly"), "plan.credit_limit_monthly"
        ),
        credit_limit_monthly_reset_at=_parse.optional_timestamp(
            plan.get("credit_limit_monthly_reset_timestamp"),
            "plan.credit_limit_monthly_reset_timestamp",
        ),
        rate_limit_minute=_parse.optional_int(
            plan.get("rate_limit_minute"), "plan.rate_limit_minute"
        ),
        requests_made_minute=_parse.optional_int(
            minute.get("requests_made"), "usage.current_minute.requests_made"
        ),
        requests_left_minute=_parse.optional_int(
            minute.get("requests_left"), "usage.current_minute.requests_left"
        ),
        credits_used_day=_parse.optional_int(
            day.get("credits_used"), "usage.current_day.credits_used"
        ),
        credits_left_day=_parse.optional_int(
            day.get("credits_left"), "usage.current_day.credits_left"
        ),
        credits_used_month=_parse.optional_int(
            month.get("credits_used"), "usage.current_month.credits_used"
        ),
        credits_left_month=_parse.optional_int(
            month.get("credits_left"), "usage.current_month.credits_left"
        ),
    )
