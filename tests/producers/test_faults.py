"""Both producers against the emulator (in process) while it misbehaves, then recovers.

429s, 5xx, timeouts and malformed JSON for a while: nothing bad is published, fresh data
comes back afterwards, and no window of the configured call rate (or credit budget) is
ever exceeded, retries included. Time is fake (the pacer's and the poll loop's), except
for the emulator's own timeout fault, which sleeps a few real milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tests.producers.conftest import FakeTime
from topcoins.emulator import EmulatorConfig, create_app
from topcoins.emulator.faults import Fault
from topcoins.emulator.state import EmulatorState
from topcoins.producers.budget import CreditLedger
from topcoins.producers.coinmarketcap import CoinMarketCapClient
from topcoins.producers.cryptocompare import CryptoCompareClient
from topcoins.producers.metrics import ProducerMetrics
from topcoins.producers.poller import Poller
from topcoins.producers.pricing import PriceSnapshotFetcher
from topcoins.producers.ratelimit import Pacer, SlidingWindowLimiter, Window
from topcoins.producers.retry import RetryPolicy
from topcoins.schemas.codec import decode, encode
from topcoins.schemas.records import PriceSnapshot, RankingSnapshot, Snapshot

CMC_KEY, CC_KEY = "emu-cmc-key-5d1f", "emu-cc-key-8e2a"
FAULTS = [
    Fault("rate_limit", remaining=4),
    Fault("server_error", remaining=4, status=503),
    Fault("timeout", remaining=4, delay=0.2),
    Fault("malformed", remaining=4),
]


class Harness:
    """The emulator, an HTTP client whose requests are stamped with fake time, a sink."""

    def __init__(self, time: FakeTime) -> None:
        self.time = time
        self.app = create_app(
            EmulatorConfig(tick_seconds=0, cmc_api_key=CMC_KEY, cryptocompare_api_key=CC_KEY)
        )
        self.emulator: EmulatorState = self.app.state.emulator
        self.sent_at: list[float] = []
        self.published: list[Snapshot] = []
        self.registry = CollectorRegistry()
        self.waits: list[tuple[str, float]] = []

    def pacer(self, provider: str, gates, stop: asyncio.Event, max_wait: float) -> Pacer:
        return Pacer(
            provider,
            gates,
            stop=stop,
            max_wait=max_wait,
            sleep=self.time.sleep,
            monotonic=self.time.clock,
            on_wait=lambda limit, seconds: self.waits.append((limit, seconds)),
        )

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.sent_at.append(self.time.now)
        return await self.asgi.handle_async_request(request)

    def client(self) -> httpx.AsyncClient:
        self.asgi = httpx.ASGITransport(app=self.app)
        transport = httpx.MockTransport(self.handle)
        return httpx.AsyncClient(base_url="http://emulator", transport=transport, timeout=0.05)

    async def publish(self, snapshot: Snapshot) -> int:
        value = encode(snapshot)  # what a broker would get, checked below
        self.published.append(snapshot)
        return len(value)

    def poller(self, provider: str, fetch, stop: asyncio.Event) -> Poller:
        return Poller(
            provider=provider,
            fetch=fetch,
            publish=self.publish,
            interval=60.0,
            stop=stop,
            metrics=ProducerMetrics(provider, self.registry),
            retry=RetryPolicy(attempts=3, base_delay=1.0, max_delay=30.0),
            sleep=self.time.sleep,
            monotonic=self.time.clock,
            rand=lambda: 0.5,
        )

    def count(self, name: str, provider: str) -> float:
        value = self.registry.get_sample_value(name, {"provider": provider})
        return value or 0.0


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    harness = Harness(FakeTime())
    async with harness.client() as http:
        harness.http = http
        yield harness


async def run_through_faults(harness: Harness, poller: Poller, provider: str) -> None:
    """One good poll, one poll per fault (5 s apart: tight), then polls after recovery."""
    assert await poller.poll_once()
    for fault in FAULTS:
        harness.emulator.faults.set((provider,), fault)
        assert not await poller.poll_once()
        harness.time.now += 5.0
    harness.emulator.faults.set((provider,), None)
    assert await poller.poll_once()
    harness.time.now += 60.0
    assert await poller.poll_once()


def assert_within(sent_at: list[float], window: float, limit: float) -> None:
    for start in sent_at:
        assert sum(1 for at in sent_at if start <= at < start + window) <= limit


async def test_ranking_producer_through_faults(harness):
    windows = [Window("second", 1, 2), Window("minute", 60, 6), Window("hour", 3600, 40)]
    stop = asyncio.Event()
    pacer = harness.pacer("cryptocompare", [SlidingWindowLimiter(windows)], stop, 60.0)
    client = CryptoCompareClient(harness.http, CC_KEY, pacer=pacer)
    poller = harness.poller("cryptocompare", lambda: client.fetch_ranking(200), stop)

    await run_through_faults(harness, poller, "cryptocompare")

    truth = [r["symbol"] for r in harness.emulator.market.snapshot()["ranking"][:200]]
    assert len(harness.published) == 3
    for snapshot in harness.published:
        assert isinstance(decode(encode(snapshot)), RankingSnapshot)
        assert [a.symbol for a in snapshot.assets] == truth
    assert harness.published[-1].fetched_at >= harness.published[0].fetched_at
    for window in windows:
        assert_within(harness.sent_at, window.seconds, window.limit)
    assert {limit for limit, _ in harness.waits} >= {"minute"}  # the limits did bind
    assert harness.count("topcoins_producer_retries_total", "cryptocompare") > 0
    assert harness.count("topcoins_producer_rejected_answers_total", "cryptocompare") == 1


async def test_pricing_producer_through_faults(harness):
    minute = Window("minute", 60, 4)
    stop = asyncio.Event()
    ledger = CreditLedger(seconds_per_credit=30.0, tolerance_credits=2, now=harness.time.now)
    pacer = harness.pacer("coinmarketcap", [SlidingWindowLimiter([minute]), ledger], stop, 120.0)
    client = CoinMarketCapClient(harness.http, CMC_KEY, pacer=pacer)
    source = PriceSnapshotFetcher(
        client, depth=400, max_ids=100, full_listing_seconds=3600.0, monotonic=harness.time.clock
    )
    poller = harness.poller("coinmarketcap", source, stop)
    credits = []

    original = pacer.acquire

    async def counting(credits_: int = 1) -> None:
        await original(credits_)
        credits.append((harness.time.now, credits_))

    pacer.acquire = counting  # type: ignore[method-assign]

    await run_through_faults(harness, poller, "coinmarketcap")

    prices = harness.emulator.market.prices()
    assert len(harness.published) == 3
    assert source.last_kind == "quotes"
    calls = harness.emulator.calls.snapshot()["coinmarketcap"]
    assert "/v2/cryptocurrency/quotes/latest" in calls
    for snapshot in harness.published:
        assert isinstance(decode(encode(snapshot)), PriceSnapshot)
        assert len(snapshot.quotes) == 400
        assert all(q.price_usd == prices[q.cmc_id] for q in snapshot.quotes)
    assert_within(harness.sent_at, minute.seconds, minute.limit)
    for start, _ in credits:  # the ledger's bound: W/spc + tolerance + the dearest call
        inside = sum(c for at, c in credits if start <= at <= start + 600.0)
        assert inside <= 600.0 / 30.0 + 2 + 2
    assert "credits" in {limit for limit, _ in harness.waits}  # the budget did bind
    assert harness.count("topcoins_producer_retries_total", "coinmarketcap") > 0
    assert harness.count("topcoins_producer_rejected_answers_total", "coinmarketcap") == 1
