"""Factories for the web tests: real-looking top-topic rows and views built the real way,
and a fake history reader for ``GET /?at=``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.exceptions import StarletteDeprecationWarning

from topcoins.domain import JoinResult
from topcoins.schemas.codec import encode
from topcoins.schemas.records import ProducerStatus, TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY
from topcoins.web.version import BuildInfo
from topcoins.web.view import TopListBuilder, TopListView

with warnings.catch_warnings():
    # starlette's TestClient prefers the httpx2 package; httpx works the same for our tests.
    warnings.filterwarnings(
        "ignore", "Using `httpx` with `starlette.testclient`", StarletteDeprecationWarning
    )
    from starlette.testclient import TestClient

__all__ = [
    "BUILD",
    "NOW",
    "PRICED_AT",
    "RANKED_AT",
    "SAMPLE_ROWS",
    "Clock",
    "FakeHistory",
    "TestClient",
    "asgi_call",
    "coin",
    "http_scope",
    "join_of",
    "meta",
    "status",
    "view_of",
]

RANKED_AT = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
PRICED_AT = RANKED_AT - timedelta(seconds=42, milliseconds=500)
# The web tests' "now": 30.25 s after the ranking. Answers are evaluated at the end of the
# current second (12:00:31), so the sample ranking is 31 s old and its prices 73 s.
NOW = RANKED_AT + timedelta(seconds=30, milliseconds=250)


class Clock:
    """A settable clock in unix seconds, for ``create_app(..., clock=...)``."""

    def __init__(self, moment: datetime = NOW) -> None:
        self.now = moment.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment``."""
        self.now = moment.timestamp()

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds``."""
        self.now += seconds


BUILD = BuildInfo(version="1.2.3", git_commit="a" * 40, build_time="2024-05-01T00:00:00Z")


def coin(
    symbol: str,
    name: str,
    cmc_id: int | None,
    price_usd: float | None,
    *,
    rank: int = 1,
    match_rule: str | None = None,
    volume_24h_usd: float | None = 1_000_000.0,
    market_cap_usd: float | None = None,
    percent_change_24h: float | None = None,
) -> TopCoin:
    """A TopCoin row as the stream worker writes it."""
    matched = cmc_id is not None
    return TopCoin(
        rank=rank,
        symbol=symbol,
        name=name,
        cmc_id=cmc_id,
        price_usd=price_usd,
        match_rule=match_rule or ("symbol" if matched else "unmatched"),
        volume_24h_usd=volume_24h_usd,
        rank_fetched_at=RANKED_AT,
        price_fetched_at=PRICED_AT if matched else None,
        ranking_snapshot_id="rank-0001",
        pricing_snapshot_id="price-0001",  # the generation's pair, matched or not
        market_cap_usd=market_cap_usd,
        percent_change_24h=percent_change_24h,
    )


def meta(
    symbols: list[str], *, provider_total: int | None = 5012, unmatched: int = 0
) -> TopListMeta:
    """The TopListMeta that closes a generation of ``symbols``."""
    return TopListMeta(
        symbols=tuple(symbols),
        ranking_snapshot_id="rank-0001",
        ranking_fetched_at=RANKED_AT,
        pricing_snapshot_id="price-0001",
        prices_fetched_at=PRICED_AT,
        provider_total=provider_total,
        depth=200,
        unmatched=unmatched,
    )


def status(
    provider: str = "coinmarketcap",
    *,
    poll_interval_seconds: float = 60.0,
    last_attempt_at: datetime = NOW,
    failures: int = 0,
    error: str = "CoinMarketCap answered 429 Too Many Requests",
    error_kind: str = "rate_limited",
) -> ProducerStatus:
    """A ProducerStatus as a producer publishes it after a poll (failing when ``failures``)."""
    component = "pricing" if provider == "coinmarketcap" else "ranking"
    last_success = PRICED_AT if provider == "coinmarketcap" else RANKED_AT
    return ProducerStatus(
        provider=provider,
        component=component,
        poll_interval_seconds=poll_interval_seconds,
        last_attempt_at=last_attempt_at,
        last_success_at=last_success,
        last_snapshot_id="price-0001" if provider == "coinmarketcap" else "rank-0001",
        last_error=error if failures else None,
        last_error_kind=error_kind if failures else None,
        last_error_at=last_attempt_at if failures else None,
        consecutive_failures=failures,
    )


# The sample generation: real-looking top assets, one without a price, one with a name
# that needs quoting in CSV.
SAMPLE_ROWS = [
    coin(
        "BTC",
        "Bitcoin",
        1,
        67012.34,
        match_rule="alias",
        volume_24h_usd=35_210_000_000.5,
        market_cap_usd=1_320_000_000_000.0,
        percent_change_24h=-1.5,
    ),
    coin(
        "ETH",
        "Ethereum",
        1027,
        3120.5,
        volume_24h_usd=15_900_000_000.0,
        market_cap_usd=375_000_000_000.25,
        percent_change_24h=0.00001,
    ),
    coin("USDT", "Tether", 825, 1.0002, volume_24h_usd=48_000_000_000.0),
    coin("WIF", 'dogwifhat, "the hat"', None, None, volume_24h_usd=None),
    coin("PEPE", "Pepe", 24478, 0.00001234, volume_24h_usd=820_000_000.25),
]


def view_of(rows: list[TopCoin], generation_meta: TopListMeta | None = None) -> TopListView:
    """Build a view the way the replica does: encoded rows, then the meta, through the builder."""
    builder = TopListBuilder()
    for row in rows:
        builder.apply(row.symbol.encode(), encode(row))
    closing = generation_meta or meta(
        [row.symbol for row in rows], unmatched=sum(1 for r in rows if r.cmc_id is None)
    )
    view = builder.apply(META_KEY.encode(), encode(closing))
    assert view is not None
    return view


def join_of(rows: list[TopCoin]) -> JoinResult:
    """A JoinResult as the history reader returns it, for ``rows``."""
    closing = meta([row.symbol for row in rows], unmatched=sum(1 for r in rows if r.cmc_id is None))
    return JoinResult(rows=tuple(rows), meta=closing)


class FakeHistory:
    """A history reader that answers every moment with ``answer`` (a result, an exception,
    or a function of the moment) and records what it was asked."""

    def __init__(self, answer: JoinResult | Exception | Callable[[datetime], JoinResult]) -> None:
        self.answer = answer
        self.asked: list[datetime] = []

    async def presented_at(self, at: datetime, present: Callable[[JoinResult], Any]) -> Any:
        self.asked.append(at)
        if isinstance(self.answer, Exception):
            raise self.answer
        if isinstance(self.answer, JoinResult):
            return present(self.answer)
        return present(self.answer(at))


def http_scope(
    method: str, path: str, query: bytes = b"", headers: list[Any] | None = None
) -> dict[str, Any]:
    """A hand-built ASGI HTTP scope (any bytes) from 127.0.0.1 to the test server."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


async def asgi_call(
    app: Any, method: str, path: str, query: bytes = b"", headers: list[Any] | None = None
) -> list[dict[str, Any]]:
    """Call ``app`` with ``http_scope(...)``; return the messages it sent."""
    scope = http_scope(method, path, query, headers)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent
