"""Mutable market state: one USD price and one 24h volume per asset, drifting on a tick.

Each tick moves every price and volume by a seeded, mean-reverting random walk in log
space (an Ornstein-Uhlenbeck step): prices move ~0.2 % per tick (stablecoins barely
move), volumes ~3 %, which reshuffles neighbours in the volume ranking within a minute
at a 1 s tick while keeping the list plausible over hours. ``set_price``/``set_volume``
move an asset and its anchor, so a controlled change persists.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from topcoins.emulator.universe import Asset, Universe

K = TypeVar("K")

__all__ = ["Market", "UnknownAssetError", "drift"]

_PRICE_SIGMA, _STABLE_SIGMA, _VOLUME_SIGMA = 0.002, 0.0002, 0.03
_PRICE_PULL, _VOLUME_PULL = 0.002, 0.01  # share of the distance to the anchor closed per tick


class UnknownAssetError(LookupError):
    """No asset has that CoinMarketCap id or CryptoCompare symbol."""


def _find(assets: Mapping[K, Asset], key: K, missing: str) -> Asset:
    """``assets[key]``, or ``UnknownAssetError(missing)``."""
    asset = assets.get(key)
    if asset is None:
        raise UnknownAssetError(missing)
    return asset


def _is_stable(asset: Asset) -> bool:
    names = f"{asset.key} {asset.name}".upper()
    return 0.97 < asset.price_usd < 1.03 and ("USD" in names or "DAI" in names)


class Market:
    """Current price and 24h volume of every asset in a universe, plus ground-truth views."""

    def __init__(
        self, universe: Universe, seed: int = 42, unix_now: Callable[[], float] = time.time
    ) -> None:
        self.universe = universe
        self.paused = False
        self.ticks = 0
        self._rng = random.Random(seed)
        self._unix_now = unix_now
        self.updated_at = unix_now()
        self._price = {a.key: a.price_usd for a in universe}
        self._volume = {a.key: a.volume_24h_usd for a in universe}
        self._anchor = {
            a.key: (math.log(a.price_usd), math.log(a.volume_24h_usd)) for a in universe
        }
        self._sigma = {a.key: _STABLE_SIGMA if _is_stable(a) else _PRICE_SIGMA for a in universe}
        self._reference = {  # the 1h/24h/7d-ago prices that percent changes are measured from
            a.key: tuple(a.price_usd / (1 + pct / 100) for pct in a.change_pct) for a in universe
        }

    def price(self, asset: Asset) -> float:
        """Current price in USD."""
        return self._price[asset.key]

    def volume(self, asset: Asset) -> float:
        """Current CryptoCompare 24h total volume in USD (the ranking metric)."""
        return self._volume[asset.key]

    def cmc_volume(self, asset: Asset) -> float:
        """Current CoinMarketCap ``volume_24h`` (differs from CryptoCompare's on purpose)."""
        return self._volume[asset.key] * asset.cmc_volume_ratio

    def change_pct(self, asset: Asset, window: int) -> float:
        """Price change in percent over window 0 (1h), 1 (24h) or 2 (7d)."""
        return (self._price[asset.key] / self._reference[asset.key][window] - 1) * 100

    def market_cap(self, asset: Asset) -> float:
        """CoinMarketCap market cap: price times circulating supply."""
        supply = asset.cmc_listing["circulating_supply"] if asset.cmc_listing else asset.supply
        return self._price[asset.key] * (supply or 0)

    def tick(self) -> None:
        """Advance every price and volume by one random-walk step (even when paused)."""
        gauss = self._rng.gauss
        for key, (price_anchor, volume_anchor) in self._anchor.items():
            log_price = math.log(self._price[key])
            log_price += _PRICE_PULL * (price_anchor - log_price) + self._sigma[key] * gauss(0, 1)
            log_volume = math.log(self._volume[key])
            log_volume += _VOLUME_PULL * (volume_anchor - log_volume) + _VOLUME_SIGMA * gauss(0, 1)
            self._price[key], self._volume[key] = math.exp(log_price), math.exp(log_volume)
        self.ticks += 1
        self.updated_at = self._unix_now()

    def set_price(self, cmc_id: int, price_usd: float) -> Asset:
        """Set the USD price of the asset CoinMarketCap lists as ``cmc_id``."""
        asset = _find(self.universe.by_cmc_id, cmc_id, f"no CoinMarketCap listing has id {cmc_id}")
        return self._set(asset, price_usd=price_usd)

    def set_volume(self, cc_symbol: str, volume_24h_usd: float) -> Asset:
        """Set the 24h total volume (USD) of the asset CryptoCompare ranks as ``cc_symbol``."""
        missing = f"CryptoCompare ranks no asset with symbol {cc_symbol!r}"
        asset = _find(self.universe.by_cc_symbol, cc_symbol, missing)
        return self._set(asset, volume_24h_usd=volume_24h_usd)

    def _set(
        self, asset: Asset, *, price_usd: float | None = None, volume_24h_usd: float | None = None
    ) -> Asset:
        """Set ``asset``'s price or volume and anchor its drift there."""
        log_price, log_volume = self._anchor[asset.key]
        if price_usd is not None:
            _check_positive("price_usd", price_usd)
            self._price[asset.key], log_price = price_usd, math.log(price_usd)
        if volume_24h_usd is not None:
            _check_positive("volume_24h_usd", volume_24h_usd)
            self._volume[asset.key], log_volume = volume_24h_usd, math.log(volume_24h_usd)
        self._anchor[asset.key] = (log_price, log_volume)
        self.updated_at = self._unix_now()
        return asset

    def ranking(self) -> list[Asset]:
        """CryptoCompare-ranked assets by 24h total volume, highest first (the toplist order)."""
        ranked = (a for a in self.universe if a.cc_info)
        return sorted(ranked, key=lambda a: (-self._volume[a.key], a.key))

    def listings(self) -> list[Asset]:
        """CoinMarketCap-listed assets by market cap, highest first (``cmc_rank`` order)."""
        listed = (a for a in self.universe if a.cmc_listing)
        return sorted(listed, key=lambda a: (-self.market_cap(a), a.cmc_id))

    def prices(self) -> dict[int, float]:
        """Current USD price of every CoinMarketCap listing, by id."""
        return {a.cmc_id: self._price[a.key] for a in self.universe if a.cmc_id is not None}

    def snapshot(self) -> dict[str, Any]:
        """The ground truth as JSON-ready data (served at ``GET /_emulator/state``)."""
        return {
            "ticks": self.ticks,
            "paused": self.paused,
            "updated_at": datetime.fromtimestamp(self.updated_at, UTC).isoformat(),
            "ranking": [
                {
                    "position": position,
                    "symbol": a.cc_symbol,
                    "name": a.name,
                    "cc_id": a.cc_info["Id"] if a.cc_info else None,
                    "volume_24h_usd": self._volume[a.key],
                    "price_usd": self._price[a.key],
                    "cmc_id": a.cmc_id,
                    "has_raw": a.cc_quoted,
                }
                for position, a in enumerate(self.ranking(), start=1)
            ],
            "prices": {str(cmc_id): price for cmc_id, price in self.prices().items()},
            "listings": [
                {
                    "cmc_rank": rank,
                    "cmc_id": a.cmc_id,
                    "symbol": a.cmc_listing["symbol"],
                    "name": a.cmc_listing["name"],
                    "slug": a.cmc_listing["slug"],
                    "price_usd": self._price[a.key],
                    "volume_24h_usd": self.cmc_volume(a),
                    "cc_symbol": a.cc_symbol,
                }
                for rank, a in enumerate(self.listings(), start=1)
                if a.cmc_listing
            ],
        }


def _check_positive(name: str, value: float) -> None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number greater than 0, got {value!r}")


@contextlib.asynccontextmanager
async def drift(market: Market, interval: float) -> AsyncIterator[None]:
    """Tick ``market`` every ``interval`` seconds in a background task (0 = never)."""
    if interval <= 0:
        yield
        return

    async def run() -> None:
        while True:
            await asyncio.sleep(interval)
            if not market.paused:
                market.tick()

    task = asyncio.create_task(run(), name="emulator-drift")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
