"""CoinMarketCap answers read into records: a listings page, a quotes answer, key info.

Each reader takes the parsed JSON of a successful answer. A value the records cannot carry
drops its listing (``dropped``) or, for an optional market value, is carried as ``None``
(``nulled``); any other malformed value rejects the whole answer (``BadResponseError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from topcoins.producers import _parse
from topcoins.producers.errors import BadResponseError
from topcoins.schemas.records import PriceQuote

__all__ = [
    "LISTINGS_PATH",
    "PROVIDER",
    "QUOTES_PATH",
    "KeyInfo",
    "credit_count",
    "parse_key_info",
    "parse_listings_page",
    "parse_quotes",
]

PROVIDER = "coinmarketcap"
LISTINGS_PATH = "/v1/cryptocurrency/listings/latest"
QUOTES_PATH = "/v2/cryptocurrency/quotes/latest"


def parse_listings_page(
    body: Any, start: int, dropped: list[_parse.OutOfRange], nulled: list[_parse.OutOfRange]
) -> tuple[list[PriceQuote], int | None]:
    """The quotes and ``status.total_count`` of one successful page; a listing the records
    cannot carry is left out and its error appended to ``dropped`` (``nulled``: see
    ``_parse_quote``)."""
    where = f"{PROVIDER}: GET {LISTINGS_PATH}"
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise BadResponseError(f"{where} answered without a data array", provider=PROVIDER)
    try:
        status = body.get("status")
        total_count = _parse.optional_count(status, "status", "total_count", "total_count")
        quotes = _parse.parse_items(
            body["data"],
            lambda _, item: _parse_quote(item, nulled),
            dropped,
            noun="listing",
            first=start,
        )
    except ValueError as exc:
        raise BadResponseError(f"{where}: {exc}", provider=PROVIDER) from exc
    return quotes, total_count


def parse_quotes(
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
    quote = _parse.optional_object(item.get("quote"), "quote")
    usd = _parse.optional_object(quote.get("USD"), "quote.USD")
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


def credit_count(body: Any) -> int:
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


# KeyInfo field -> (the usage period, the count in it), all optional integers.
_USAGE_COUNTS = {
    "requests_made_minute": ("current_minute", "requests_made"),
    "requests_left_minute": ("current_minute", "requests_left"),
    "credits_used_day": ("current_day", "credits_used"),
    "credits_left_day": ("current_day", "credits_left"),
    "credits_used_month": ("current_month", "credits_used"),
    "credits_left_month": ("current_month", "credits_left"),
}


def parse_key_info(body: Any) -> KeyInfo:
    """The ``data`` of a successful key info answer; raises ``ValueError`` when malformed."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise ValueError("answered without a data object")
    plan, usage = data.get("plan"), data.get("usage")
    if not isinstance(plan, dict) or not isinstance(usage, dict):
        raise ValueError("data must hold a plan object and a usage object")
    periods = {
        name: _parse.optional_object(usage.get(name), f"usage.{name}")
        for name in dict.fromkeys(period for period, _ in _USAGE_COUNTS.values())
    }
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
        **{
            field: _parse.optional_int(periods[period].get(count), f"usage.{period}.{count}")
            for field, (period, count) in _USAGE_COUNTS.items()
        },
    )
