"""Top-topic message sequences that mix generations, for every reader's tests.

Each ``MixCase`` is a sequence of (key, value) messages as a reader meets them, and what a
reader must do at each ``TopListMeta`` in it: serve that generation (its ranking snapshot
id) or refuse the meta (``REFUSED``) and keep what it had. The web replica's builder, the
pricing producer's ``RankedIds`` and ``scripts/example_consumer.py`` run the same cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from topcoins.schemas.codec import encode
from topcoins.schemas.records import TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY

__all__ = ["CASES", "REFUSED", "SYMBOLS", "MixCase", "cmc_id", "meta", "row"]

AT = datetime(2024, 9, 17, 16, 0, tzinfo=UTC)
SYMBOLS = ("BTC", "ETH", "USDT", "SOL", "XRP")
REFUSED = "refused"
Message = tuple[bytes, bytes | None]


def cmc_id(symbol: str, ranking: str) -> int:
    """A CoinMarketCap id that tells the generation apart (rank-1: 1.., rank-2: 101..)."""
    return SYMBOLS.index(symbol) + 1 + (100 if ranking == "rank-2" else 0)


def row(symbol: str, ranking: str) -> Message:
    """The row of ``symbol`` in the generation (``ranking``, "price-1")."""
    coin = TopCoin(
        rank=SYMBOLS.index(symbol) + 1,
        symbol=symbol,
        name=symbol.title(),
        cmc_id=cmc_id(symbol, ranking),
        price_usd=1.0,
        match_rule="exact",
        volume_24h_usd=1e9,
        rank_fetched_at=AT,
        price_fetched_at=AT,
        ranking_snapshot_id=ranking,
        pricing_snapshot_id="price-1",
    )
    return symbol.encode(), encode(coin)


def meta(ranking: str) -> Message:
    """The meta closing the generation (``ranking``, "price-1") of all ``SYMBOLS``."""
    record = TopListMeta(SYMBOLS, ranking, AT, "price-1", AT, 5000, 200, 0)
    return META_KEY.encode(), encode(record)


def rows(ranking: str, symbols: tuple[str, ...] = SYMBOLS) -> list[Message]:
    return [row(symbol, ranking) for symbol in symbols]


@dataclass(frozen=True)
class MixCase:
    """Messages in offset order; per meta in them, the served ranking id or REFUSED."""

    name: str
    messages: list[Message]
    at_metas: list[str]


FIRST = [*rows("rank-1"), meta("rank-1")]

CASES = [
    MixCase("one whole generation", FIRST, ["rank-1"]),
    MixCase(
        "killed after 2 of 5 rows, restarted, old meta written over them",
        [*FIRST, *rows("rank-2", SYMBOLS[:2]), meta("rank-1")],
        ["rank-1", REFUSED],
    ),
    MixCase(
        "the same, read by a new replica after compaction",
        [*rows("rank-1", SYMBOLS[2:]), *rows("rank-2", SYMBOLS[:2]), meta("rank-1")],
        [REFUSED],
    ),
    MixCase(
        "a replica resuming after a gap keeps stale rows",
        [*FIRST, *rows("rank-2", SYMBOLS[3:]), meta("rank-2")],
        ["rank-1", REFUSED],
    ),
    MixCase(
        "a refused meta, then the whole next generation",
        [*FIRST, *rows("rank-2", SYMBOLS[:2]), meta("rank-1"), *rows("rank-2"), meta("rank-2")],
        ["rank-1", REFUSED, "rank-2"],
    ),
    MixCase(
        "the same generation closed twice",
        [*FIRST, *rows("rank-1", SYMBOLS[:1]), meta("rank-1")],
        ["rank-1", "rank-1"],
    ),
]
