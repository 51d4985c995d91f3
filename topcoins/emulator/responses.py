"""Provider-shaped bodies, rendered from the market: plain dicts ready for ``json.dumps``.

Shapes follow the recorded responses in ``tests/fixtures/upstream``: CoinMarketCap
listings as of 2022-12 and CryptoCompare ``totalvolfull`` as of 2022-09 (key order too).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from topcoins.emulator.market import Market
from topcoins.emulator.universe import Asset
from topcoins.formats import iso_utc

__all__ = [
    "CC_AUTH_MESSAGE",
    "CC_RATE_LIMIT_MESSAGE",
    "CMC_RATE_LIMIT_MESSAGE",
    "CMC_SORTS",
    "cc_error",
    "cc_rate_limit",
    "cc_rate_limit_stats",
    "cc_toplist",
    "cmc_error",
    "cmc_key_info",
    "cmc_listings",
    "iso",
]

CMC_RATE_LIMIT_MESSAGE = (
    "You've exceeded your API Key's HTTP request rate limit. Rate limits reset every minute."
)
CC_AUTH_MESSAGE = "You need a valid auth key or api key to access this endpoint"
CC_RATE_LIMIT_MESSAGE = "You are over your rate limit please upgrade your account!"
CC_MAX_CALLS = {"second": 20, "minute": 300, "hour": 3000, "day": 7500, "month": 50000}
# The plan /v1/key/info reports: CoinMarketCap's Basic (free) plan.
CMC_MONTHLY_CREDITS = 10_000
CMC_CALLS_PER_MINUTE = 30


def iso(moment: float) -> str:
    """A unix time as CoinMarketCap writes it: ``2022-12-16T18:07:21.385Z``."""
    return iso_utc(datetime.fromtimestamp(moment, UTC))


# --- CoinMarketCap -----------------------------------------------------------------------

_SortKey = Callable[[Market, Asset], Any]


def _listing_number(field: str) -> _SortKey:
    return lambda m, a: a.cmc_listing[field] if a.cmc_listing[field] is not None else -math.inf


CMC_SORTS: Mapping[str, _SortKey] = {
    "market_cap": lambda m, a: m.market_cap(a),
    "market_cap_strict": lambda m, a: m.market_cap(a),
    "name": lambda m, a: a.cmc_listing["name"].lower(),
    "symbol": lambda m, a: a.cmc_listing["symbol"],
    "date_added": lambda m, a: a.cmc_listing["date_added"],
    "price": lambda m, a: m.price(a),
    "circulating_supply": _listing_number("circulating_supply"),
    "total_supply": _listing_number("total_supply"),
    "max_supply": _listing_number("max_supply"),
    "num_market_pairs": _listing_number("num_market_pairs"),
    "volume_24h": lambda m, a: m.cmc_volume(a),
    "volume_7d": lambda m, a: m.cmc_volume(a),
    "volume_30d": lambda m, a: m.cmc_volume(a),
    "percent_change_1h": lambda m, a: m.change_pct(a, 0),
    "percent_change_24h": lambda m, a: m.change_pct(a, 1),
    "percent_change_7d": lambda m, a: m.change_pct(a, 2),
    "market_cap_by_total_supply_strict": lambda m, a: (
        m.price(a) * (a.cmc_listing["total_supply"] or 0)
    ),
}


def cmc_status(now: float, error_code: int = 0, message: str | None = None) -> dict[str, Any]:
    """The ``status`` object of every CoinMarketCap response."""
    return {
        "timestamp": iso(now),
        "error_code": error_code,
        "error_message": message,
        "elapsed": 0 if error_code else 12,
        "credit_count": 0,
    }


def cmc_error(now: float, error_code: int, message: str) -> dict[str, Any]:
    """A CoinMarketCap error body: a ``status`` and no ``data``."""
    return {"status": cmc_status(now, error_code, message)}


def _countdown(seconds: float) -> str:
    """``In 3 days, 19 hours, 56 minutes``: CoinMarketCap's human-readable reset time."""
    minutes = max(0, int(seconds // 60))
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    shown = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n]
    return "In " + (", ".join(shown) if shown else "less than a minute")


def cmc_key_info(
    now: float, *, requests_this_minute: int, credits_today: int, credits_this_month: int
) -> dict[str, Any]:
    """``GET /v1/key/info``: the Basic plan and this key's usage (no credit charged)."""
    moment = datetime.fromtimestamp(now, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    reset = datetime(year, month, 1, tzinfo=UTC).timestamp()
    return {
        "data": {
            "plan": {
                "credit_limit_monthly": CMC_MONTHLY_CREDITS,
                "credit_limit_monthly_reset": _countdown(reset - now),
                "credit_limit_monthly_reset_timestamp": iso(reset),
                "rate_limit_minute": CMC_CALLS_PER_MINUTE,
            },
            "usage": {
                "current_minute": {
                    "requests_made": requests_this_minute,
                    "requests_left": max(0, CMC_CALLS_PER_MINUTE - requests_this_minute),
                },
                "current_day": {"credits_used": credits_today},
                "current_month": {
                    "credits_used": credits_this_month,
                    "credits_left": max(0, CMC_MONTHLY_CREDITS - credits_this_month),
                },
            },
        },
        "status": cmc_status(now) | {"notice": None},
    }


def cmc_listings(
    market: Market, *, start: int, limit: int, sort: str, descending: bool, now: float
) -> dict[str, Any]:
    """``GET /v1/cryptocurrency/listings/latest``: listings ordered by ``sort``."""
    by_cap = market.listings()
    rank = {a.key: position for position, a in enumerate(by_cap, start=1)}
    total_cap = sum(market.market_cap(a) for a in by_cap) or 1.0
    key = CMC_SORTS[sort]
    ordered = sorted(by_cap, key=lambda a: key(market, a), reverse=descending)
    page = ordered[start - 1 : start - 1 + limit]
    stamp = iso(market.updated_at)
    status = cmc_status(now) | {"credit_count": max(1, math.ceil(len(page) / 200))}
    return {
        "status": status | {"notice": None, "total_count": len(by_cap)},
        "data": [_cmc_item(market, a, rank[a.key], total_cap, stamp) for a in page],
    }


def _cmc_item(
    market: Market, asset: Asset, rank: int, total_cap: float, stamp: str
) -> dict[str, Any]:
    listing, extra = asset.cmc_listing or {}, asset.cmc_extra
    price, market_cap = market.price(asset), market.market_cap(asset)
    diluted_supply = listing["max_supply"] or listing["total_supply"] or 0
    head = ("id", "name", "symbol", "slug", "num_market_pairs", "date_added", "tags")
    head += ("max_supply", "circulating_supply", "total_supply", "platform")
    return {
        **{key: listing[key] for key in head},
        "cmc_rank": rank,
        "self_reported_circulating_supply": listing["self_reported_circulating_supply"],
        "self_reported_market_cap": listing["self_reported_market_cap"],
        "tvl_ratio": listing["tvl_ratio"],
        "last_updated": stamp,
        "quote": {
            "USD": {
                "price": price,
                "volume_24h": market.cmc_volume(asset),
                "volume_change_24h": extra["volume_change_24h"],
                "percent_change_1h": round(market.change_pct(asset, 0), 8),
                "percent_change_24h": round(market.change_pct(asset, 1), 8),
                "percent_change_7d": round(market.change_pct(asset, 2), 8),
                "percent_change_30d": extra["percent_change_30d"],
                "percent_change_60d": extra["percent_change_60d"],
                "percent_change_90d": extra["percent_change_90d"],
                "market_cap": market_cap,
                "market_cap_dominance": round(market_cap / total_cap * 100, 4),
                "fully_diluted_market_cap": round(price * diluted_supply, 2),
                "tvl": None,
                "last_updated": stamp,
            }
        },
    }


# --- CryptoCompare -----------------------------------------------------------------------


def cc_error(message: str, type_: int, **extra: Any) -> dict[str, Any]:
    """A CryptoCompare error body (served with HTTP 200, like the real API)."""
    body = {"Response": "Error", "Message": message, "HasWarning": False, "Type": type_}
    return body | {"RateLimit": {}, "Data": {}} | extra


def cc_rate_limit(calls_made: Mapping[str, int]) -> dict[str, Any]:
    """The Type 99 body, reporting ``calls_made`` against the free plan's ``max_calls``."""
    body = cc_error(CC_RATE_LIMIT_MESSAGE, 99)
    body["RateLimit"] = {"calls_made": dict(calls_made), "max_calls": CC_MAX_CALLS}
    return body


def cc_rate_limit_stats(calls_made: Mapping[str, int]) -> dict[str, Any]:
    """``GET /stats/rate/limit``: calls made and left per window against ``CC_MAX_CALLS``."""
    made = {window: calls_made.get(window, 0) for window in CC_MAX_CALLS}
    left = {window: max(0, CC_MAX_CALLS[window] - made[window]) for window in CC_MAX_CALLS}
    return {
        "Response": "Success",
        "Message": "",
        "HasWarning": False,
        "Type": 100,
        "RateLimit": {},
        "Data": {"calls_made": made, "calls_left": left},
    }


def cc_toplist(market: Market, *, page: int, limit: int, now: float) -> dict[str, Any]:
    """``GET /data/top/totalvolfull?tsym=USD``: one page of the ranking by total volume."""
    ranked = market.ranking()
    chunk = ranked[page * limit : (page + 1) * limit]
    return {
        "Message": "Success",
        "Type": 100,
        "MetaData": {"Count": len(ranked)},
        "SponsoredData": [],
        "Data": [_cc_item(market, a, now) for a in chunk],
        "RateLimit": {},
        "HasWarning": False,
    }


def _cc_item(market: Market, asset: Asset, now: float) -> dict[str, Any]:
    item: dict[str, Any] = {"CoinInfo": dict(asset.cc_info or {})}
    if asset.cc_quoted:
        raw = _cc_raw(market, asset, now)
        item["RAW"] = {"USD": raw}
        item["DISPLAY"] = {"USD": _cc_display(raw)}
    return item


_LAST_MARKETS = ("Binance", "Coinbase", "Kraken", "Bitfinex", "OKX", "Kucoin", "Bitstamp")


def _cc_raw(market: Market, asset: Asset, now: float) -> dict[str, Any]:
    symbol, price = asset.cc_symbol or asset.key, market.price(asset)
    salt = zlib.crc32(symbol.encode())
    direct = 0.05 + (salt % 997) / 997 * 0.35  # share of the total volume on the USD pair
    total = market.volume(asset)
    pct_hour, pct_day = market.change_pct(asset, 0), market.change_pct(asset, 1)
    open_hour, open_day = price / (1 + pct_hour / 100), price / (1 + pct_day / 100)
    pair_usd, supply = total * direct, asset.supply
    last = 250.0 / price
    return {
        "TYPE": "5",
        "MARKET": "CCCAGG",
        "FROMSYMBOL": symbol,
        "TOSYMBOL": "USD",
        "FLAGS": "2049",
        "PRICE": price,
        "LASTUPDATE": int(market.updated_at),
        "MEDIAN": price,
        "LASTVOLUME": last,
        "LASTVOLUMETO": last * price,
        "LASTTRADEID": str(int(now * 1000)),
        "VOLUMEDAY": pair_usd * 0.8 / price,
        "VOLUMEDAYTO": pair_usd * 0.8,
        "VOLUME24HOUR": pair_usd / price,
        "VOLUME24HOURTO": pair_usd,
        "OPENDAY": open_day,
        "HIGHDAY": max(open_day, price) * 1.004,
        "LOWDAY": min(open_day, price) * 0.996,
        "OPEN24HOUR": open_day,
        "HIGH24HOUR": max(open_day, price) * 1.006,
        "LOW24HOUR": min(open_day, price) * 0.994,
        "LASTMARKET": _LAST_MARKETS[salt % len(_LAST_MARKETS)],
        "VOLUMEHOUR": pair_usd / 24 / price,
        "VOLUMEHOURTO": pair_usd / 24,
        "OPENHOUR": open_hour,
        "HIGHHOUR": max(open_hour, price) * 1.001,
        "LOWHOUR": min(open_hour, price) * 0.999,
        "TOPTIERVOLUME24HOUR": pair_usd * 0.9 / price,
        "TOPTIERVOLUME24HOURTO": pair_usd * 0.9,
        "CHANGE24HOUR": price - open_day,
        "CHANGEPCT24HOUR": pct_day,
        "CHANGEDAY": price - open_day,
        "CHANGEPCTDAY": pct_day,
        "CHANGEHOUR": price - open_hour,
        "CHANGEPCTHOUR": pct_hour,
        "CONVERSIONTYPE": "direct",
        "CONVERSIONSYMBOL": "",
        "SUPPLY": supply,
        "MKTCAP": price * supply,
        "MKTCAPPENALTY": 0,
        "CIRCULATINGSUPPLY": supply,
        "CIRCULATINGSUPPLYMKTCAP": price * supply,
        "TOTALVOLUME24H": total / price,
        "TOTALVOLUME24HTO": total,
        "TOTALTOPTIERVOLUME24H": total * 0.7 / price,
        "TOTALTOPTIERVOLUME24HTO": total * 0.7,
        "IMAGEURL": (asset.cc_info or {}).get("ImageUrl", ""),
    }


_COIN_SIGNS = {"BTC": "Ƀ", "ETH": "Ξ", "LTC": "Ł"}
_SHORT = {"MKTCAP", "CIRCULATINGSUPPLYMKTCAP", "TOTALVOLUME24H", "TOTALVOLUME24HTO"}
_SHORT |= {"TOTALTOPTIERVOLUME24H", "TOTALTOPTIERVOLUME24HTO"}
_COIN_UNITS = {"LASTVOLUME", "VOLUMEDAY", "VOLUME24HOUR", "VOLUMEHOUR", "TOPTIERVOLUME24HOUR"}
_COIN_UNITS |= {"SUPPLY", "CIRCULATINGSUPPLY", "TOTALVOLUME24H", "TOTALTOPTIERVOLUME24H"}
_AS_IS = {"LASTTRADEID", "LASTMARKET", "CONVERSIONTYPE", "CONVERSIONSYMBOL", "IMAGEURL"}


def _cc_display(raw: Mapping[str, Any]) -> dict[str, str]:
    """The ``DISPLAY`` block: the ``RAW`` values as CryptoCompare formats them."""
    coin = _COIN_SIGNS.get(raw["FROMSYMBOL"], raw["FROMSYMBOL"])
    out = {"FROMSYMBOL": coin, "TOSYMBOL": "$", "MARKET": "CryptoCompare Index"}
    for key, value in raw.items():
        if key in out or key in {"TYPE", "FLAGS", "MEDIAN"}:
            continue
        if key in _AS_IS:
            out[key] = value
        elif key == "LASTUPDATE":
            out[key] = "Just now"
        elif key == "MKTCAPPENALTY":
            out[key] = f"{value} %"
        elif key.startswith("CHANGEPCT"):
            out[key] = f"{value:.2f}"
        else:
            sign = coin if key in _COIN_UNITS else "$"
            digits = 2 if key.startswith("CHANGE") else 4
            text = _short(value) if key in _SHORT else _full(value, digits)
            out[key] = f"{sign} {text}"
    return out


def _full(value: float, significant: int) -> str:
    """``19,541.4``, ``1,361.27``, ``0.06086``: CryptoCompare's long number format."""
    magnitude = abs(value)
    if magnitude >= 10_000:
        return f"{value:,.1f}"
    if magnitude >= 1:
        return f"{value:,.2f}"
    if magnitude == 0:
        return "0.0"
    decimals = significant - 1 - math.floor(math.log10(magnitude))
    return f"{value:.{decimals}f}"


def _short(value: float) -> str:
    """``14.41 B``, ``628.82 M``, ``739.14 K``: CryptoCompare's short number format."""
    for factor, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {unit}"
    return f"{value:.2f}"
