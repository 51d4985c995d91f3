"""CryptoCompare toplist client: the ranking by 24h total volume as one ``RankingSnapshot``."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx

from topcoins.producers import _parse
from topcoins.producers._client import ProviderClient
from topcoins.producers._http import parse_retry_after, redact
from topcoins.producers.errors import (
    AuthError,
    BadResponseError,
    ParameterError,
    RateLimitError,
    RateLimitUsage,
    ServerError,
)
from topcoins.producers.metrics import timed_stage
from topcoins.schemas.records import RankedAsset, RankingSnapshot, utc_millis
from topcoins.settings import ENV_DOCS

__all__ = ["PAGE_SIZE", "PROVIDER", "RATE_LIMIT_PATH", "TOPLIST_PATH", "CryptoCompareClient"]

logger = logging.getLogger(__name__)

PROVIDER = "cryptocompare"
TOPLIST_PATH = "/data/top/totalvolfull"
RATE_LIMIT_PATH = "/stats/rate/limit"
PAGE_SIZE = 100  # the toplist's largest `limit`; pages are 0-based

_KEY_ENV = ENV_DOCS["cryptocompare_api_key"].name
_AUTH_WORDS = ("key", "auth")


class CryptoCompareClient(ProviderClient):
    """Reads ``/data/top/totalvolfull?tsym=USD`` through a given ``httpx.AsyncClient``.

    The key travels in the ``authorization: Apikey <key>`` header only, never in the URL.
    Every call (each page, each retry) first passes ``pacer``; every non-empty
    ``RateLimit`` block the provider sends (success or error) is passed to it, and
    ``rate_limit`` keeps the last one.
    """

    provider = PROVIDER
    rate_limit: RateLimitUsage | None = None  # set per instance by each answer that has one

    async def fetch_ranking(self, depth: int) -> RankingSnapshot:
        """The first ``depth`` assets by 24h total volume, in provider order, as answered.

        Pages (``limit`` 100, ``page`` 0, 1, …) until ``depth`` distinct assets, an empty
        page or ``MetaData.Count``. Volumes move while the pages are fetched, so an asset can
        show up on two pages: duplicates are kept as answered (the join drops them), and a
        further page is fetched so that ``depth`` distinct assets remain after that repair.
        One invalid page fails the whole snapshot, and so does an answer with no asset.
        """
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        limit = min(PAGE_SIZE, depth)
        assets: list[RankedAsset] = []
        answered = 0  # assets the provider listed, dropped ones included
        provider_total: int | None = None
        page = 0
        while len({asset.symbol for asset in assets}) < depth:
            items, count, listed = await self._fetch_page(page, limit, first_position=answered + 1)
            provider_total = count if count is not None else provider_total
            if not listed:
                break
            assets.extend(items)
            answered += listed
            if provider_total is not None and answered >= provider_total:
                break
            page += 1
        if not assets:
            raise BadResponseError(
                f"{PROVIDER}: GET {TOPLIST_PATH} answered no assets at all", provider=PROVIDER
            )
        return RankingSnapshot(
            snapshot_id=uuid.uuid4().hex,
            fetched_at=utc_millis(self._now()),
            depth=depth,
            provider_total=provider_total,
            assets=tuple(assets),
        )

    async def fetch_rate_limit(self) -> RateLimitUsage:
        """The key's (or, keyless, the IP's) calls made and allowed per window, by
        ``/stats/rate/limit``; it is paced, and counted by CryptoCompare, like any call."""
        body = await self._call(RATE_LIMIT_PATH, {})
        data = body.get("Data") if isinstance(body, dict) else None
        made = data.get("calls_made") if isinstance(data, dict) else None
        left = data.get("calls_left") if isinstance(data, dict) else None
        usage = _usage({"calls_made": made, "max_calls": left})
        if usage is None or not usage.calls_made:
            raise BadResponseError(
                f"{PROVIDER}: GET {RATE_LIMIT_PATH} answered without Data.calls_made and "
                "Data.calls_left counts",
                provider=PROVIDER,
            )
        allowed = {
            window: usage.calls_made.get(window, 0) + remaining
            for window, remaining in usage.max_calls.items()
        }
        usage = RateLimitUsage(calls_made=usage.calls_made, max_calls=allowed)
        self._pacer.observe(usage)
        return usage

    def _key_headers(self) -> dict[str, str]:
        return {"authorization": f"Apikey {self._api_key}"}

    async def _call(self, path: str, params: dict[str, str | int]) -> Any:
        """One paced ``GET``: the parsed body of a successful answer, or an ``UpstreamError``."""
        response = await self._paced_get(path, params)
        body = self._body(response)
        usage = _usage(body.get("RateLimit") if isinstance(body, dict) else None)
        if usage is not None:
            self.rate_limit = usage
            self._pacer.observe(usage)
        with self._holding_on_rate_limit():
            self._raise_for_error(response, body, usage, path)
        return body

    async def _fetch_page(
        self, page: int, limit: int, *, first_position: int
    ) -> tuple[list[RankedAsset], int | None, int]:
        """The valid assets of one page, ``MetaData.Count``, and how many assets the page
        listed (dropped ones included)."""
        params: dict[str, str | int] = {"tsym": "USD", "limit": limit, "page": page}
        body = await self._call(TOPLIST_PATH, params)
        dropped: list[_parse.OutOfRange] = []
        with timed_stage(PROVIDER, "validate"):
            items, count = _parse_page(body, page, first_position, dropped)
        self._dropped(TOPLIST_PATH, dropped)
        logger.debug(
            "cryptocompare page",
            extra={"provider": PROVIDER, "page": page, "limit": limit, "items": len(items)},
        )
        return items, count, len(items) + len(dropped)

    def _raise_for_error(
        self,
        response: httpx.Response,
        body: Any,
        usage: RateLimitUsage | None,
        path: str = TOPLIST_PATH,
    ) -> None:
        """Map the HTTP status, then a ``"Response": "Error"`` body (sent with HTTP 200)."""
        where = f"{PROVIDER}: GET {path}"
        error = body if isinstance(body, dict) and body.get("Response") == "Error" else None
        kind = error.get("Type") if error else None
        message = redact(str(error.get("Message")) if error else "", self._api_key)
        detail = f"HTTP {response.status_code}" + (f", Type {kind}: {message}" if error else "")
        http_status = response.status_code
        if http_status == 429 or kind == 99:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None and usage is not None:
                retry_after = usage.retry_after
            exceeded = ", ".join(usage.exceeded) if usage and usage.exceeded else "unknown"
            raise RateLimitError(
                f"{where} is rate limited ({detail}; exceeded windows: {exceeded})",
                provider=PROVIDER,
                retry_after=retry_after,
                usage=usage,
            )
        if http_status in (401, 403) or (
            kind == 1 and any(word in message.lower() for word in _AUTH_WORDS)
        ):
            raise AuthError(
                f"{where} refused the API key ({detail}); set {_KEY_ENV} to a valid key",
                provider=PROVIDER,
            )
        if http_status >= 500:
            raise ServerError(
                f"{where} failed on the provider side ({detail})",
                provider=PROVIDER,
                status_code=http_status,
            )
        if kind in (1, 2):
            param = error.get("ParamWithError") if error else None
            suffix = f" (parameter {param})" if param else ""
            raise ParameterError(
                f"{where} rejected the request{suffix} ({detail})", provider=PROVIDER
            )
        if error is not None or not response.is_success:
            raise BadResponseError(
                f"{where} answered an unexpected error ({detail})", provider=PROVIDER
            )


def _usage(block: Any) -> RateLimitUsage | None:
    """The ``RateLimit`` block, or ``None`` when it is absent, empty or malformed."""
    if not isinstance(block, dict) or not block:
        return None

    def counts(value: Any) -> dict[str, int]:
        if not isinstance(value, dict):
            return {}
        return {
            str(k): v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)
        }

    made, allowed = counts(block.get("calls_made")), counts(block.get("max_calls"))
    return RateLimitUsage(calls_made=made, max_calls=allowed) if made or allowed else None


def _parse_page(
    body: Any, page: int, first_position: int, dropped: list[_parse.OutOfRange]
) -> tuple[list[RankedAsset], int | None]:
    """The assets of one successful page, numbered from ``first_position`` (their place in
    the answer), and ``Count``; an asset the records cannot carry is left out and its error
    appended to ``dropped``."""
    where = f"{PROVIDER}: GET {TOPLIST_PATH} page {page}"
    if not isinstance(body, dict) or not isinstance(body.get("Data"), list):
        raise BadResponseError(f"{where} answered without a Data array", provider=PROVIDER)
    try:
        count = _parse.optional_count(body.get("MetaData"), "MetaData", "Count", "MetaData.Count")
        assets = _parse.parse_items(
            body["Data"],
            lambda index, item: _parse_asset(item, first_position + index),
            dropped,
            noun="item",
        )
    except ValueError as exc:
        raise BadResponseError(f"{where}: {exc}", provider=PROVIDER) from exc
    return assets, count


def _parse_asset(item: Any, position: int) -> RankedAsset:
    """One ``Data[]`` entry; no ``RAW`` block means no volume (``None``)."""
    if not isinstance(item, dict) or not isinstance(item.get("CoinInfo"), dict):
        raise ValueError("item must be an object with a CoinInfo object")
    coin = item["CoinInfo"]
    symbol = _parse.require_symbol(coin.get("Name"), "CoinInfo.Name")
    if not symbol.strip():
        raise ValueError("CoinInfo.Name must not be empty")
    cc_id = coin.get("Id")
    if isinstance(cc_id, int) and not isinstance(cc_id, bool):
        cc_id = str(cc_id)
    raw = _parse.optional_object(item.get("RAW"), "RAW")
    usd = _parse.optional_object(raw.get("USD"), "RAW.USD")
    return RankedAsset(
        position=position,
        symbol=symbol,
        name=_parse.require_name(coin.get("FullName"), "CoinInfo.FullName"),
        cc_id=_parse.optional_str(cc_id, "CoinInfo.Id", max_chars=_parse.MAX_SYMBOL_CHARS),
        volume_24h_usd=_parse.optional_number(
            usd.get("TOTALVOLUME24HTO"), "RAW.USD.TOTALVOLUME24HTO", volume=True
        ),
    )
