"""Builds typed snapshots from the recorded provider responses, for the streams tests.

Deliberately independent of the producers' parsers (written in parallel): this reads only
the fields the join needs, straight from the fixture JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from tests.conftest import load_fixture
from topcoins.schemas.records import PriceQuote, PriceSnapshot, RankedAsset, RankingSnapshot

RANK_TIME = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
PRICE_TIME = datetime(2024, 1, 2, 3, 4, 0, 123000, tzinfo=UTC)


def _cmc_time(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)


def quote_from_json(item: dict[str, Any]) -> PriceQuote:
    """One CoinMarketCap ``data[]`` entry as a ``PriceQuote``."""
    usd = (item.get("quote") or {}).get("USD") or {}
    return PriceQuote(
        cmc_id=int(item["id"]),
        symbol=item["symbol"],
        name=item["name"],
        slug=item["slug"],
        cmc_rank=item.get("cmc_rank"),
        price_usd=usd.get("price"),
        volume_24h_usd=usd.get("volume_24h"),
        last_updated=_cmc_time(item.get("last_updated")),
    )


def cmc_quotes(name: str) -> tuple[PriceQuote, ...]:
    """Every quote of a recorded CoinMarketCap listings response, in the file's order."""
    body = load_fixture(name)
    data = body["data"] if isinstance(body, dict) else body
    return tuple(quote_from_json(item) for item in data)


def prices_from_fixture(
    name: str,
    *,
    extra: Iterable[PriceQuote] = (),
    snapshot_id: str = "prices-1",
    fetched_at: datetime = PRICE_TIME,
) -> PriceSnapshot:
    """A ``PriceSnapshot`` holding a recorded CoinMarketCap response (plus ``extra`` quotes)."""
    body = load_fixture(name)
    status = body.get("status", {}) if isinstance(body, dict) else {}
    return PriceSnapshot(
        snapshot_id=snapshot_id,
        fetched_at=fetched_at,
        total_count=status.get("total_count"),
        quotes=cmc_quotes(name) + tuple(extra),
    )


def cc_assets(name: str) -> tuple[RankedAsset, ...]:
    """The ranked assets of a recorded CryptoCompare toplist (full or light form)."""
    body = load_fixture(name)
    assets = []
    for index, item in enumerate(body["Data"]):
        info = item["CoinInfo"]
        raw_usd = (item.get("RAW") or {}).get("USD") or {}
        volume = raw_usd.get("TOTALVOLUME24HTO")
        assets.append(
            RankedAsset(
                position=index + 1,
                symbol=info["Name"],
                name=info["FullName"],
                cc_id=str(info["Id"]),
                volume_24h_usd=float(volume) if volume is not None else None,
            )
        )
    return tuple(assets)


def ranking_from_fixture(
    name: str,
    *,
    depth: int | None = None,
    extra: Iterable[RankedAsset] = (),
    snapshot_id: str = "ranking-1",
    fetched_at: datetime = RANK_TIME,
) -> RankingSnapshot:
    """A ``RankingSnapshot`` of a recorded CryptoCompare toplist (plus ``extra`` assets)."""
    body = load_fixture(name)
    assets = cc_assets(name) + tuple(extra)
    return RankingSnapshot(
        snapshot_id=snapshot_id,
        fetched_at=fetched_at,
        depth=depth if depth is not None else len(assets),
        provider_total=(body.get("MetaData") or {}).get("Count"),
        assets=assets,
    )


def ranked(
    position: int, symbol: str, name: str, cc_id: str | None = None, volume: float | None = 1.0
) -> RankedAsset:
    """A hand-made ranked asset."""
    return RankedAsset(position, symbol, name, cc_id, volume)


def quote(
    cmc_id: int,
    symbol: str,
    name: str,
    *,
    rank: int | None = None,
    price: float | None = 1.0,
    last_updated: datetime | None = None,
) -> PriceQuote:
    """A hand-made CoinMarketCap quote."""
    return PriceQuote(
        cmc_id=cmc_id,
        symbol=symbol,
        name=name,
        slug=name.lower().replace(" ", "-"),
        cmc_rank=rank,
        price_usd=price,
        volume_24h_usd=None,
        last_updated=last_updated,
    )


def ranking_of(
    *assets: RankedAsset,
    depth: int | None = None,
    provider_total: int | None = None,
    snapshot_id: str = "ranking-1",
    fetched_at: datetime = RANK_TIME,
) -> RankingSnapshot:
    """A hand-made ranking snapshot."""
    return RankingSnapshot(
        snapshot_id=snapshot_id,
        fetched_at=fetched_at,
        depth=depth if depth is not None else len(assets),
        provider_total=provider_total,
        assets=tuple(assets),
    )


def prices_of(
    *quotes: PriceQuote, snapshot_id: str = "prices-1", fetched_at: datetime = PRICE_TIME
) -> PriceSnapshot:
    """A hand-made price snapshot."""
    return PriceSnapshot(
        snapshot_id=snapshot_id, fetched_at=fetched_at, total_count=None, quotes=tuple(quotes)
    )
