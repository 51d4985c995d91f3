"""The asset universe: real assets from recorded responses plus seeded synthetic ones.

Real data comes from ``data/*.json`` (copies of ``tests/fixtures/upstream``, see SOURCES.md
there). Synthetic assets fill the lists up to ``CC_RANKED`` CryptoCompare-ranked and
``CMC_LISTED`` CoinMarketCap-listed assets. ``Universe.cc_to_cmc()`` is the ground truth
of which CryptoCompare symbol is which CoinMarketCap id, including the cases a join must
handle: symbols that differ (``TONCOIN`` = CMC ``TON``, ``MANTLE`` = ``MNT``, ``RNDR`` =
``RENDER``), a symbol that names another asset on the other side (CC ``LUNA`` is Terra 2.0,
CMC id 20314, while CMC id 4172 is CC ``LUNC``), one CMC symbol shared by two assets
(``HOT``; CryptoCompare calls the second one ``HOT*``), ranked assets CMC does not list
(``GAPS``, ``HYN``, ``PLF``, ``ELAMA``) and ranked items without ``RAW``/``DISPLAY``
(``CUSDC``, ``EVMOS``). Synthetic CMC ids are drawn from 20000-39999.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib.resources import files
from typing import Any

__all__ = ["CC_RANKED", "CC_TO_CMC", "CMC_LISTED", "Asset", "Universe", "build_universe"]

CC_RANKED = 500
CMC_LISTED = 700

# Newest capture first: the first one to describe an asset wins.
_CMC_CAPTURES = ("cmc_listings_2022-12-16.json", "cmc_listings_2021-08-31.json")
_CC_CAPTURES = (
    "cc_totalvol_2024-05-14_page0.json",
    "cc_mktcapfull_2022-09-21_page0.json",
    "cc_totalvolfull_2020-05-04_page0_limit10.json",
    "cc_mktcapfull_2020-05-04_page0_limit10.json",
)

# CryptoCompare symbol -> CoinMarketCap id where matching by symbol is wrong; None = not listed.
CC_TO_CMC: Mapping[str, int | None] = {
    "TONCOIN": 11419,
    "LUNA": 20314,  # Terra 2.0; CMC id 4172 (LUNA until 2022) is CryptoCompare's LUNC
    "MANTLE": 27075,
    "RNDR": 5690,
    "HOT": 2682,
    "HOT*": 2467,
    "GAPS": None,
    "HYN": None,
    "PLF": None,
    "ELAMA": None,
}

# CMC listings absent from the captures, for real CryptoCompare assets: (symbol, name, slug).
_KNOWN_LISTINGS = {
    20314: ("LUNA", "Terra", "terra-luna-v2"),
    27075: ("MNT", "Mantle", "mantle"),
    5690: ("RENDER", "Render", "render"),
}

# The second CMC "HOT" (CryptoCompare: "HOT*"); not in any capture, so written out here.
_HYDRO_LISTING: dict[str, Any] = {
    "id": 2467,
    "name": "Hydro Protocol",
    "symbol": "HOT",
    "slug": "hydro-protocol",
    "num_market_pairs": 9,
    "date_added": "2018-07-27T00:00:00.000Z",
    "tags": ["platform", "ethereum-ecosystem"],
    "max_supply": None,
    "circulating_supply": 700_000_000,
    "total_supply": 1_560_000_000,
    "platform": {
        "id": 1027,
        "name": "Ethereum",
        "symbol": "ETH",
        "slug": "ethereum",
        "token_address": "0x9af839687f6c94542ac5ece2e317daae355493a1",
    },
}
_CMC_STATIC = (
    *("id", "name", "symbol", "slug", "num_market_pairs", "date_added", "tags", "max_supply"),
    *("circulating_supply", "total_supply", "platform", "self_reported_circulating_supply"),
    *("self_reported_market_cap", "tvl_ratio"),
)
_CMC_EXTRA = ("volume_change_24h", "percent_change_30d", "percent_change_60d", "percent_change_90d")
_NO_QUOTE_BAND = (8e6, 4e7)  # volume of ranked items served without RAW (top-200 range)
_SYLLABLES = (*(c + v for c in "bdklmnrstvz" for v in "aeiou"), "qu", "xi", "pho", "ny")
_SUFFIXES = ("", "", "", " Network", " Protocol", " Finance", " Token", " Chain", " AI", " DAO")
_TAGS = ("defi", "gaming", "memes", "layer-1", "layer-2", "ai-big-data", "metaverse", "dao")


@dataclass(frozen=True, eq=False)
class Asset:
    """One asset: its provider descriptions and its starting market values."""

    key: str  # unique: the CryptoCompare symbol, else the CoinMarketCap symbol
    price_usd: float
    volume_24h_usd: float  # CryptoCompare total 24h volume in USD (the ranking metric)
    supply: float
    change_pct: tuple[float, ...]  # 1h, 24h, 7d price change at start, in percent
    cmc_volume_ratio: float  # CMC volume_24h / CC total volume (the providers disagree)
    cc_info: Mapping[str, Any] | None = None  # CryptoCompare CoinInfo; None = not ranked
    cc_quoted: bool = True  # False: the toplist item has no RAW/DISPLAY blocks
    cmc_listing: Mapping[str, Any] | None = None  # CMC static fields; None = not listed
    cmc_extra: Mapping[str, float] = field(default_factory=dict)  # static quote fields
    synthetic: bool = False  # invented here (no capture describes it)

    @property
    def cc_symbol(self) -> str | None:
        """CryptoCompare symbol (``CoinInfo.Name``), or None when CryptoCompare lacks it."""
        return self.cc_info["Name"] if self.cc_info else None

    @property
    def cmc_id(self) -> int | None:
        """CoinMarketCap id, or None when CoinMarketCap does not list the asset."""
        return self.cmc_listing["id"] if self.cmc_listing else None

    @property
    def name(self) -> str:
        """The CryptoCompare full name, else the CoinMarketCap name."""
        if self.cc_info:
            return str(self.cc_info["FullName"])
        return str(self.cmc_listing["name"]) if self.cmc_listing else self.key


@dataclass(frozen=True)
class Universe:
    """Every asset the emulator knows, in a fixed order."""

    assets: tuple[Asset, ...]

    def __iter__(self) -> Iterator[Asset]:
        return iter(self.assets)

    @cached_property
    def by_key(self) -> dict[str, Asset]:
        """Assets by internal key."""
        return {a.key: a for a in self.assets}

    @cached_property
    def by_cc_symbol(self) -> dict[str, Asset]:
        """CryptoCompare-ranked assets by CryptoCompare symbol."""
        return {a.cc_symbol: a for a in self.assets if a.cc_symbol}

    @cached_property
    def by_cmc_id(self) -> dict[int, Asset]:
        """CoinMarketCap-listed assets by id."""
        return {a.cmc_id: a for a in self.assets if a.cmc_id is not None}

    def cc_to_cmc(self) -> dict[str, int | None]:
        """Ground truth: each CryptoCompare symbol's CoinMarketCap id (None = not listed)."""
        return {symbol: a.cmc_id for symbol, a in self.by_cc_symbol.items()}


@cache
def _capture(name: str) -> Any:
    return json.loads((files("topcoins.emulator") / "data" / name).read_text(encoding="utf-8"))


def _real_cmc() -> dict[int, dict[str, Any]]:
    """Real CMC listings by id; an older entry is dropped when a newer one uses its symbol."""
    listings: dict[int, dict[str, Any]] = {}
    for name in _CMC_CAPTURES:
        symbols = {item["symbol"] for item in listings.values()}
        for item in _capture(name)["data"]:
            if item["id"] not in listings and item["symbol"] not in symbols:
                listings[item["id"]] = item
    return listings


def _real_cc() -> dict[str, tuple[dict[str, Any], bool, float | None, float, float | None]]:
    """Real CryptoCompare items by symbol: (CoinInfo, quoted, price, volume USD, supply)."""
    items: dict[str, Any] = {}
    for name in _CC_CAPTURES:
        for item in _capture(name)["Data"]:
            info = item["CoinInfo"]
            if info["Name"] in items:
                continue
            price, volume, supply = None, 0.0, None
            if raw := item.get("RAW", {}).get("USD"):
                price, volume, supply = raw["PRICE"], raw["TOTALVOLUME24HTO"], raw["SUPPLY"]
            elif conv := item.get("ConversionInfo"):
                price = float(conv["RAW"][0].split("~")[5])
                volume, supply = conv["TotalVolume24H"] * price, conv["Supply"]
            quoted = "RAW" in item or "ConversionInfo" in item
            items[info["Name"]] = (info, quoted, price, volume, supply or None)
    return items


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


class _Builder:
    """Accumulates assets, handing out unique synthetic ids and symbols from one RNG."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.assets: list[Asset] = []
        self.cmc_ids: set[int] = set()
        self.cc_ids: set[str] = set()
        self.symbols: set[str] = set()
        self.keys: set[str] = set()

    def log_uniform(self, low: float, high: float) -> float:
        return math.exp(self.rng.uniform(math.log(low), math.log(high)))

    def changes(self) -> tuple[float, float, float]:
        return (self.rng.gauss(0, 0.8), self.rng.gauss(0, 4), self.rng.gauss(0, 10))

    def cmc_extra(self, quote: Mapping[str, Any] | None = None) -> dict[str, float]:
        quote = quote or {}
        return {k: quote.get(k) or round(self.rng.gauss(0, 20), 4) for k in _CMC_EXTRA}

    def cmc_id(self) -> int:
        while (value := self.rng.randrange(20000, 40000)) in self.cmc_ids:
            pass
        self.cmc_ids.add(value)
        return value

    def cc_info(self, symbol: str, name: str, max_supply: float | None) -> dict[str, Any]:
        while (cc_id := str(self.rng.randrange(950000, 999999))) in self.cc_ids:
            pass
        self.cc_ids.add(cc_id)
        lower = symbol.lower()
        return {
            "Id": cc_id,
            "Name": symbol,
            "FullName": name,
            "Internal": symbol,
            "ImageUrl": f"/media/{self.rng.randrange(37000000, 45000000)}/{lower}.png",
            "Url": f"/coins/{lower}/overview",
            "Algorithm": "N/A",
            "ProofType": "N/A",
            "Rating": {
                "Weiss": {
                    "Rating": "",
                    "TechnologyAdoptionRating": "",
                    "MarketPerformanceRating": "",
                }
            },
            "NetHashesPerSecond": 0,
            "BlockNumber": 0,
            "BlockTime": 0,
            "BlockReward": 0,
            "AssetLaunchDate": f"{self.rng.randrange(2017, 2024)}-{self.rng.randrange(1, 13):02d}-"
            f"{self.rng.randrange(1, 29):02d}",
            "MaxSupply": max_supply or -1,
            "Type": 1,
            "DocumentType": "Webpagecoinp",
        }

    def cmc_listing(self, symbol: str, name: str, supply: float) -> dict[str, Any]:
        token = self.rng.random() < 0.6
        return {
            "id": self.cmc_id(),
            "name": name,
            "symbol": symbol,
            "slug": _slug(name),
            "num_market_pairs": int(self.log_uniform(1, 400)),
            "date_added": f"{self.rng.randrange(2017, 2024)}-{self.rng.randrange(1, 13):02d}-"
            f"{self.rng.randrange(1, 29):02d}T00:00:00.000Z",
            "tags": self.rng.sample(_TAGS, self.rng.randrange(0, 3)),
            "max_supply": None if self.rng.random() < 0.4 else round(supply * 1.5),
            "circulating_supply": supply,
            "total_supply": round(supply * self.rng.uniform(1, 1.3)),
            "platform": {
                "id": 1027,
                "name": "Ethereum",
                "symbol": "ETH",
                "slug": "ethereum",
                "token_address": f"0x{self.rng.getrandbits(160):040x}",
            }
            if token
            else None,
        }

    def synthetic_name(self) -> tuple[str, str]:
        while True:
            stem = "".join(self.rng.choice(_SYLLABLES) for _ in range(self.rng.choice((2, 3))))
            symbol = stem.upper()[: self.rng.choice((3, 4, 4, 5))]
            if symbol not in self.symbols:
                return symbol, stem.capitalize() + self.rng.choice(_SUFFIXES)

    def add(self, asset: Asset) -> None:
        if asset.key in self.keys:
            raise RuntimeError(f"universe: two assets share the key {asset.key!r}")
        self.keys.add(asset.key)
        self.assets.append(asset)
        self.symbols.update(s for s in (asset.cc_symbol, asset.key) if s)
        if asset.cmc_listing:
            self.symbols.add(asset.cmc_listing["symbol"])
            self.cmc_ids.add(asset.cmc_listing["id"])
        if asset.cc_info:
            self.cc_ids.add(asset.cc_info["Id"])


def _static(listing: Mapping[str, Any]) -> dict[str, Any]:
    return {key: listing.get(key) for key in _CMC_STATIC}


def _changes(quote: Mapping[str, Any], fallback: tuple[float, float, float]) -> tuple[float, ...]:
    keys = ("percent_change_1h", "percent_change_24h", "percent_change_7d")
    return tuple(quote.get(key) or value for key, value in zip(keys, fallback, strict=True))


@cache
def build_universe(
    seed: int = 42, cc_ranked: int = CC_RANKED, cmc_listed: int = CMC_LISTED
) -> Universe:
    """The universe for ``seed``: every real captured asset plus deterministic synthetic ones,
    filling up to ``cc_ranked`` CryptoCompare-ranked and ``cmc_listed`` CoinMarketCap-listed
    assets."""
    b = _Builder(seed)
    cmc = _real_cmc()
    cmc_by_symbol = {item["symbol"]: item for item in cmc.values()}
    cmc[_HYDRO_LISTING["id"]] = _HYDRO_LISTING
    cc = _real_cc()
    hydro = b.cc_info("HOT*", "Hydro Protocol", None)
    cc["HOT*"] = (hydro, True, 0.0042, b.log_uniform(*_NO_QUOTE_BAND), 700_000_000)
    b.cmc_ids.update(cmc, _KNOWN_LISTINGS)
    b.symbols.update(symbol for symbol, _, _ in _KNOWN_LISTINGS.values())
    b.cc_ids.update(info["Id"] for info, *_ in cc.values())
    b.symbols.update(cc, cmc_by_symbol)
    used: set[int] = set()

    for symbol, (info, quoted, cc_price, volume, supply) in cc.items():
        if symbol in CC_TO_CMC:
            cmc_id = CC_TO_CMC[symbol]
        else:
            cmc_id = cmc_by_symbol[symbol]["id"] if symbol in cmc_by_symbol else None
        listing = cmc.get(cmc_id) if cmc_id is not None else None
        quote = listing.get("quote", {}).get("USD", {}) if listing else {}
        supply = (listing or {}).get("circulating_supply") or supply or b.log_uniform(1e7, 1e10)
        if listing is None and (cmc_id is not None or symbol not in CC_TO_CMC):
            # ranked on CC, listed on CMC, but absent from the CMC captures
            name = info["FullName"].strip()
            cmc_symbol, name, slug = _KNOWN_LISTINGS.get(cmc_id or 0, (symbol, name, None))
            listing = b.cmc_listing(cmc_symbol, name, supply)
            if (max_supply := info.get("MaxSupply", 0)) > 0:
                listing["max_supply"] = max_supply
                listing["total_supply"] = min(listing["total_supply"], max_supply)
            if cmc_id is not None:
                listing |= {"id": cmc_id, "slug": slug}
        if listing:
            used.add(listing["id"])
        b.add(
            Asset(
                key=symbol,
                price_usd=quote.get("price") or cc_price or b.log_uniform(0.01, 10),
                volume_24h_usd=volume or quote.get("volume_24h") or b.log_uniform(*_NO_QUOTE_BAND),
                supply=supply,
                change_pct=_changes(quote, b.changes()),
                cmc_volume_ratio=b.rng.uniform(0.4, 1.6),
                cc_info=info,
                cc_quoted=quoted,
                cmc_listing=_static(listing) if listing else None,
                cmc_extra=b.cmc_extra(quote),
            )
        )

    for cmc_id, listing in cmc.items():  # listed on CMC, absent from the CC captures
        if cmc_id in used:
            continue
        quote = listing["quote"]["USD"]
        b.add(
            Asset(
                key=listing["symbol"],
                price_usd=quote["price"],
                volume_24h_usd=quote["volume_24h"] * b.rng.uniform(0.2, 1.2),
                supply=listing["circulating_supply"] or b.log_uniform(1e7, 1e10),
                change_pct=_changes(quote, b.changes()),
                cmc_volume_ratio=b.rng.uniform(0.4, 1.6),
                cc_info=b.cc_info(listing["symbol"], listing["name"], listing["max_supply"]),
                cmc_listing=_static(listing),
                cmc_extra=b.cmc_extra(quote),
            )
        )

    _add_synthetic(b, cc_ranked, cmc_listed)
    return Universe(tuple(b.assets))


def _add_synthetic(b: _Builder, cc_ranked: int, cmc_listed: int) -> None:
    """Fill up to ``cc_ranked`` ranked and ``cmc_listed`` listed assets with invented ones."""
    ranked = sum(1 for a in b.assets if a.cc_info)
    listed = sum(1 for a in b.assets if a.cmc_listing)
    for index in range(max(cc_ranked - ranked, cmc_listed - listed, 0)):
        symbol, name = b.synthetic_name()
        price = b.log_uniform(1e-6, 50)
        supply = round(b.log_uniform(1e6, 2e9) / price)
        on_cc = index < cc_ranked - ranked
        on_cmc = listed + index < cmc_listed
        info = b.cc_info(symbol, name, None) if on_cc else None
        b.add(
            Asset(
                key=symbol,
                price_usd=price,
                volume_24h_usd=b.log_uniform(1e4, 1e7),
                supply=supply,
                change_pct=b.changes(),
                cmc_volume_ratio=b.rng.uniform(0.4, 1.6),
                cc_info=info,
                cmc_listing=_static(b.cmc_listing(symbol, name, supply)) if on_cmc else None,
                cmc_extra=b.cmc_extra(),
                synthetic=True,
            )
        )
