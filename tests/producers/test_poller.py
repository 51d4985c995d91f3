"""The poll loop with fake fetch and publish: what gets published, counted and logged."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import pytest
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry

from tests.conftest import load_fixture
from tests.producers.conftest import API_KEY, Recorder, Sink, json_response
from topcoins.logs import JsonFormatter
from topcoins.producers.coinmarketcap import CoinMarketCapClient
from topcoins.producers.errors import (
    AuthError,
    BadResponseError,
    RateLimitError,
    RateLimitUsage,
    ServerError,
)
from topcoins.producers.metrics import ProducerMetrics
from topcoins.producers.poller import Poller
from topcoins.producers.ratelimit import WaitInterrupted
from topcoins.producers.retry import RetryPolicy
from topcoins.producers.status import StatusReporter
from topcoins.schemas.codec import encode
from topcoins.schemas.records import (
    PriceQuote,
    PriceSnapshot,
    ProducerStatus,
    RankedAsset,
    RankingSnapshot,
    Snapshot,
)

PROVIDER = "coinmarketcap"
AT = datetime(2024, 9, 17, 16, 0, tzinfo=UTC)


def price_snapshot(n: int) -> PriceSnapshot:
    quote = PriceQuote(1, "BTC", "Bitcoin", "bitcoin", 1, 61137.27, 3.4e10, AT)
    return PriceSnapshot(f"snap-{n}", AT, 9813, (quote,) * n)


def ranking_snapshot(n: int) -> RankingSnapshot:
    assets = tuple(RankedAsset(i, f"S{i}", f"Asset {i}", str(i), 1.0) for i in range(1, n + 1))
    return RankingSnapshot(f"rank-{n}", AT, 200, 2426, assets)


class Script:
    """A fetch coroutine that returns or raises the scripted outcomes in turn."""

    def __init__(self, *outcomes: Snapshot | Exception) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def __call__(self) -> Snapshot:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class StopAfter:
    """A sleep that records delays and sets ``stop`` on its ``polls``-th interval wait."""

    def __init__(self, stop: asyncio.Event, polls: int) -> None:
        self.stop = stop
        self.polls = polls
        self.delays: list[float] = []

    async def __call__(self, seconds: float, stop: asyncio.Event | None) -> bool:
        self.delays.append(seconds)
        if len(self.delays) >= self.polls:
            self.stop.set()
        return self.stop.is_set()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(f"topcoins_producer_{name}", {"provider": PROVIDER, **labels})
    return 0.0 if value is None else value


def make_poller(fetch, publish, registry, *, polls: int = 1, stop=None, **kwargs):
    stop = stop or asyncio.Event()
    sleep = StopAfter(stop, polls)
    poller = Poller(
        provider=PROVIDER,
        fetch=fetch,
        publish=publish,
        interval=60.0,
        stop=stop,
        metrics=ProducerMetrics(PROVIDER, registry),
        retry=kwargs.pop("retry", RetryPolicy(attempts=1)),
        sleep=sleep,
        unix_now=lambda: 1726588800.0,
        **kwargs,
    )
    return poller, sleep


async def test_publishes_each_good_snapshot(registry):
    snapshots = [price_snapshot(3), price_snapshot(5), price_snapshot(2)]
    publish = Sink()
    poller, _ = make_poller(Script(*snapshots), publish, registry, polls=3)
    assert not poller.ready

    await poller.run()

    assert publish.sent == snapshots
    assert poller.ready
    assert sample(registry, "polls_total", outcome="success") == 3
    assert sample(registry, "publish_total") == 3
    assert sample(registry, "snapshot_items") == 2
    assert sample(registry, "snapshot_bytes") == len(encode(snapshots[-1]))
    assert sample(registry, "last_success_timestamp_seconds") == 1726588800.0
    assert sample(registry, "fetch_duration_seconds_count") == 3


async def test_ranking_snapshots_count_their_assets(registry):
    poller, _ = make_poller(Script(ranking_snapshot(7)), Sink(), registry)

    assert await poller.poll_once()

    assert sample(registry, "snapshot_items") == 7


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ServerError("HTTP 500", provider=PROVIDER), "server"),
        (RateLimitError("429", provider=PROVIDER, retry_after=60.0), "rate_limit"),
        (BadResponseError("not JSON", provider=PROVIDER), "bad_response"),
    ],
)
async def test_an_error_publishes_nothing_and_is_counted(registry, error, kind):
    publish = Sink()
    poller, _ = make_poller(Script(error, price_snapshot(1)), publish, registry, polls=2)

    await poller.run()

    assert [s.snapshot_id for s in publish.sent] == ["snap-1"]
    assert sample(registry, "errors_total", kind=kind) == 1
    assert sample(registry, "polls_total", outcome="failure") == 1
    assert sample(registry, "polls_total", outcome="success") == 1
    rejected = 1 if kind == "bad_response" else 0
    assert sample(registry, "rejected_answers_total") == rejected


async def test_not_ready_until_the_first_publish(registry):
    poller, _ = make_poller(Script(ServerError("down", provider=PROVIDER)), Sink(), registry)

    assert not await poller.poll_once()

    assert not poller.ready


async def test_auth_error_stops_the_loop(registry):
    publish = Sink()
    fetch = Script(AuthError("set CMC_API_KEY", provider=PROVIDER), price_snapshot(1))
    poller, _ = make_poller(fetch, publish, registry, polls=5)

    with pytest.raises(AuthError):
        await poller.run()

    assert fetch.calls == 1
    assert publish.sent == []
    assert sample(registry, "errors_total", kind="auth") == 1


async def test_kafka_failure_is_counted_and_the_loop_goes_on(registry):
    publish = Sink(KafkaTimeoutError())
    poller, _ = make_poller(
        Script(price_snapshot(1), price_snapshot(2)), publish, registry, polls=2
    )

    await poller.run()

    assert [s.snapshot_id for s in publish.sent] == ["snap-2"]
    assert sample(registry, "errors_total", kind="publish") == 1


async def test_schema_invalid_snapshot_is_rejected(registry):
    publish = Sink(BadResponseError("does not fit its Avro schema", provider=PROVIDER))
    poller, _ = make_poller(Script(price_snapshot(1)), publish, registry)

    await poller.run()

    assert sample(registry, "rejected_answers_total") == 1
    assert not poller.ready


async def test_retries_are_counted(registry):
    fetch = Script(ServerError("502", provider=PROVIDER), price_snapshot(1))
    poller, sleep = make_poller(
        fetch,
        Sink(),
        registry,
        polls=2,
        retry=RetryPolicy(attempts=2),
        rand=lambda: 0.5,
    )

    await poller.run()

    assert fetch.calls == 2
    assert sample(registry, "retries_total") == 1
    assert sleep.delays[0] == 0.5  # the jittered backoff, then the interval wait


async def test_rate_limit_usage_becomes_metrics(registry):
    usage = RateLimitUsage(calls_made={"day": 7773}, max_calls={"day": 7500})
    error = RateLimitError("429", provider=PROVIDER, retry_after=86400.0, usage=usage)
    poller, _ = make_poller(Script(error), Sink(), registry)

    await poller.run()

    assert sample(registry, "rate_limit_calls_made", window="day") == 7773
    assert sample(registry, "rate_limit_max_calls", window="day") == 7500


async def test_waits_the_rest_of_the_interval(registry):
    ticks = iter([0.0, 0.0, 12.5, 12.5])
    poller, sleep = make_poller(
        Script(price_snapshot(1)), Sink(), registry, monotonic=lambda: next(ticks)
    )

    await poller.run()

    assert sleep.delays == [47.5]


async def test_stop_lets_the_current_poll_finish(registry):
    stop = asyncio.Event()
    publish = Sink()

    async def slow_fetch() -> Snapshot:
        stop.set()  # SIGTERM arrives while the provider is answering
        await asyncio.sleep(0)
        return price_snapshot(1)

    poller, sleep = make_poller(slow_fetch, publish, registry, stop=stop, polls=99)

    await asyncio.wait_for(poller.run(), timeout=5)

    assert [s.snapshot_id for s in publish.sent] == ["snap-1"]
    assert sleep.delays == [pytest.approx(60.0, abs=1)]


async def test_stop_during_a_real_interval_wait_returns_promptly(registry):
    stop = asyncio.Event()
    poller = Poller(
        provider=PROVIDER,
        fetch=Script(price_snapshot(1)),
        publish=Sink(),
        interval=3600.0,
        stop=stop,
        metrics=ProducerMetrics(PROVIDER, registry),
    )
    asyncio.get_running_loop().call_later(0.05, stop.set)

    await asyncio.wait_for(poller.run(), timeout=5)

    assert poller.ready


async def test_logs_are_structured_and_never_hold_the_key(make_http, registry, caplog):
    body = load_fixture("cmc_error_1002_api-key-missing_2020-03-23.json")
    body["status"].update(error_code=1001, error_message=f"This API Key is invalid: {API_KEY}")
    recorder = Recorder(
        json_response(500, {"status": {"error_code": 500, "error_message": "down"}}),
        json_response(401, body),
    )
    client = CoinMarketCapClient(make_http(recorder, "https://cmc.test"), API_KEY)
    poller, _ = make_poller(
        lambda: client.fetch_listings(10),
        Sink(),
        registry,
        polls=5,
        retry=RetryPolicy(attempts=3, base_delay=0.0),
    )
    caplog.set_level(logging.DEBUG)

    with pytest.raises(AuthError):
        await poller.run()

    assert recorder.requests[0].headers["X-CMC_PRO_API_KEY"] == API_KEY
    formatter = JsonFormatter("pricing-producer")
    lines = [formatter.format(record) for record in caplog.records]
    assert API_KEY not in caplog.text
    assert all(API_KEY not in line for line in lines)
    failure = json.loads(lines[-1])
    assert failure["kind"] == "auth"
    assert failure["provider"] == PROVIDER
    assert "CMC_API_KEY" in failure["error"]
    assert any(json.loads(line).get("msg") == "retrying provider call" for line in lines)


def test_interval_must_be_positive(registry):
    with pytest.raises(ValueError):
        Poller(
            provider=PROVIDER,
            fetch=Script(),
            publish=Sink(),
            interval=0,
            stop=asyncio.Event(),
            metrics=ProducerMetrics(PROVIDER, registry),
        )


class StatusSink:
    def __init__(self) -> None:
        self.sent: list[ProducerStatus] = []

    async def __call__(self, status: ProducerStatus) -> None:
        self.sent.append(status)


def with_status() -> tuple[StatusReporter, StatusSink]:
    sink = StatusSink()
    reporter = StatusReporter(
        provider=PROVIDER,
        component="pricing-producer",
        interval=60.0,
        send=sink,
        metrics=ProducerMetrics(PROVIDER, CollectorRegistry()),
        secrets=(API_KEY,),
    )
    return reporter, sink


async def test_status_is_reported_after_every_poll(registry):
    status, sink = with_status()
    fetch = Script(price_snapshot(1), ServerError("HTTP 502", provider=PROVIDER), price_snapshot(2))
    poller, _ = make_poller(fetch, Sink(), registry, polls=3, status=status)

    await poller.run()

    assert [s.consecutive_failures for s in sink.sent] == [0, 1, 0]
    assert [s.last_snapshot_id for s in sink.sent] == ["snap-1", "snap-1", "snap-2"]
    assert sink.sent[1].last_error == "HTTP 502"
    assert sink.sent[1].last_error_kind == "server"
    assert sink.sent[0].last_attempt_at == datetime.fromtimestamp(1726588800.0, UTC)
    assert sink.sent[2].last_success_at == AT


async def test_a_kafka_failure_is_reported_as_publish(registry):
    status, sink = with_status()
    poller, _ = make_poller(
        Script(price_snapshot(1)), Sink(KafkaTimeoutError()), registry, status=status
    )

    await poller.run()

    assert sink.sent[0].last_error_kind == "publish"
    assert sink.sent[0].last_snapshot_id is None


async def test_a_bad_key_is_reported_before_the_loop_stops(registry):
    status, sink = with_status()
    error = AuthError(f"refused {API_KEY}; set CMC_API_KEY", provider=PROVIDER)
    poller, _ = make_poller(Script(error), Sink(), registry, status=status)

    with pytest.raises(AuthError):
        await poller.run()

    assert sink.sent[0].last_error_kind == "auth"
    assert "CMC_API_KEY" in (sink.sent[0].last_error or "")
    assert API_KEY not in (sink.sent[0].last_error or "")


async def test_stop_during_a_rate_limit_wait_abandons_the_poll_quietly(registry):
    status, sink = with_status()

    async def interrupted() -> Snapshot:
        raise WaitInterrupted("stopped while waiting")

    poller, _ = make_poller(interrupted, Sink(), registry, status=status)

    assert not await poller.poll_once()

    assert sink.sent == []
    assert sample(registry, "polls_total", outcome="failure") == 0


def test_the_counters_every_service_exposes_start_at_zero(registry):
    ProducerMetrics(PROVIDER, registry)

    for name in ("retries", "rejected_answers", "skipped_messages", "status_publish_failures"):
        value = registry.get_sample_value(f"topcoins_producer_{name}_total", {"provider": PROVIDER})
        assert value == 0.0, name


def test_failed_polls_in_a_row_go_back_to_zero_after_a_success():
    registry = CollectorRegistry()
    metrics = ProducerMetrics(PROVIDER, registry)
    name = "topcoins_producer_consecutive_failed_polls"
    assert registry.get_sample_value(name, {"provider": PROVIDER}) == 0
    for _ in range(3):
        metrics.poll(success=False)
    assert registry.get_sample_value(name, {"provider": PROVIDER}) == 3
    metrics.poll(success=True)
    assert registry.get_sample_value(name, {"provider": PROVIDER}) == 0
