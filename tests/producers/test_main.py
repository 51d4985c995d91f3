"""The producer process lifecycle: startup failures, auth failure, clean stop."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from tests.conftest import load_fixture
from tests.producers.test_ranked_ids import ScriptedConsumer, wait_for
from topcoins.ops import OpsServer
from topcoins.producers import main
from topcoins.producers.budget import BudgetError
from topcoins.producers.main import (
    EXIT_AUTH_ERROR,
    EXIT_OK,
    EXIT_STARTUP_FAILURE,
    ProducerJob,
    pricing_job,
    ranking_job,
    serve,
)
from topcoins.producers.metrics import ProducerMetrics
from topcoins.producers.ranked_ids import RankedIdsReader
from topcoins.schemas.codec import decode_as
from topcoins.schemas.records import PriceSnapshot, ProducerStatus
from topcoins.settings import Settings

API_KEY = "sk-test-main-7d1e"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_for(servers: str, **env: str) -> Settings:
    return Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": servers,
            "TOPIC_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
            "CMC_API_KEY": API_KEY,
            "PRICING_OPS_PORT": str(free_port()),
            "RANKING_OPS_PORT": str(free_port()),
            **env,
        }
    )


def test_jobs_describe_each_producer():
    settings = settings_for("localhost:9092")

    pricing, ranking = pricing_job(settings), ranking_job(settings)

    assert (pricing.component, pricing.provider) == ("pricing-producer", "coinmarketcap")
    assert pricing.topic.name == f"{settings.topic_prefix}.prices.v1"
    assert pricing.ops_port == settings.pricing_ops_port
    assert (ranking.component, ranking.provider) == ("ranking-producer", "cryptocompare")
    assert ranking.topic.name == f"{settings.topic_prefix}.ranks.v1"
    assert ranking.key_env == "CRYPTOCOMPARE_API_KEY"


async def test_unreachable_broker_exits_non_zero_with_one_line(caplog):
    settings = settings_for(f"127.0.0.1:{free_port()}")
    caplog.set_level(logging.INFO, logger="topcoins.producers")

    status = await serve(
        pricing_job(settings), settings, broker_wait_seconds=0.5, registry=CollectorRegistry()
    )

    assert status == EXIT_STARTUP_FAILURE
    errors = [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("topcoins")
    ]
    assert len(errors) == 1
    assert "pricing-producer cannot start" in errors[0].getMessage()
    assert "\n" not in errors[0].getMessage()
    assert API_KEY not in caplog.text


async def test_stop_while_waiting_for_the_broker_exits_zero():
    settings = settings_for(f"127.0.0.1:{free_port()}")
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.2, stop.set)

    status = await asyncio.wait_for(
        serve(pricing_job(settings), settings, stop=stop, registry=CollectorRegistry()),
        timeout=10,
    )

    assert status == EXIT_OK


@pytest.fixture
async def fake_cmc() -> AsyncIterator[dict[str, Any]]:
    """A local CoinMarketCap stand-in: answers ``state['status']`` with ``state['body']``."""
    state: dict[str, Any] = {
        "status": 200,
        "body": load_fixture("cmc_listings_2024-09-17T1600Z_limit20.json"),
        "keys": [],
    }

    async def listings(request: web.Request) -> web.Response:
        state["keys"].append(request.headers.get("X-CMC_PRO_API_KEY"))
        return web.json_response(state["body"], status=state["status"])

    app = web.Application()
    app.router.add_get("/v1/cryptocurrency/listings/latest", listings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    state["url"] = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


async def test_publishes_then_stops_cleanly(bootstrap_servers, fake_cmc):
    settings = settings_for(bootstrap_servers, CMC_BASE_URL=fake_cmc["url"], PRICING_DEPTH="20")
    job = pricing_job(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(job, settings, stop=stop, registry=CollectorRegistry()))
    consumer = AIOKafkaConsumer(
        job.topic.name, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest"
    )
    try:
        while not fake_cmc["keys"] and not task.done():  # wait for the first provider call
            await asyncio.sleep(0.05)
        await consumer.start()
        message = await asyncio.wait_for(consumer.getone(), timeout=30)
        async with httpx.AsyncClient() as http:
            for _ in range(50):  # ready right after the broker acknowledged the snapshot
                ready = await http.get(f"http://127.0.0.1:{settings.pricing_ops_port}/readyz")
                if ready.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            metrics = await http.get(f"http://127.0.0.1:{settings.pricing_ops_port}/metrics")
    finally:
        stop.set()
        status = await asyncio.wait_for(task, timeout=30)
        await consumer.stop()

    assert status == EXIT_OK
    assert message is not None and message.key == b"coinmarketcap"
    assert len(decode_as(PriceSnapshot, message.value).quotes) == 20
    assert ready.status_code == 200
    assert ready.json()["stuck_consumers"] == {}
    assert 'topcoins_producer_publish_total{provider="coinmarketcap"} 1.0' in metrics.text
    assert fake_cmc["keys"][0] == API_KEY


async def test_auth_error_exits_with_its_own_status(bootstrap_servers, fake_cmc, caplog):
    fake_cmc["status"] = 401
    fake_cmc["body"] = load_fixture("cmc_error_1002_api-key-missing_2020-03-23.json")
    settings = settings_for(bootstrap_servers, CMC_BASE_URL=fake_cmc["url"])
    caplog.set_level(logging.INFO, logger="topcoins.producers")

    status = await asyncio.wait_for(
        serve(pricing_job(settings), settings, registry=CollectorRegistry()), timeout=60
    )

    assert status == EXIT_AUTH_ERROR
    last = caplog.records[-1].getMessage()
    assert last.startswith("pricing-producer stopped:")
    assert "CMC_API_KEY" in last
    assert API_KEY not in caplog.text


def test_jobs_run_on_the_effective_interval_and_ensure_the_status_topic():
    settings = settings_for("localhost:9092")

    pricing, ranking = pricing_job(settings), ranking_job(settings)

    assert pricing.interval == pytest.approx(572.0, abs=0.01)  # free plan, quotes refresh
    assert "polls every 572 s" in pricing.schedule
    assert pricing.schedule_fields["listing_credits"] == 5
    assert dict(pricing.credits_per_call) == {"listings": 5, "quotes": 2}
    prefix = settings.topic_prefix
    assert [t.name for t in pricing.topics] == [
        f"{prefix}.prices.v1",
        f"{prefix}.status.v1",
        f"{prefix}.top.v1",
    ]
    assert ranking.interval == 60.0
    assert [t.name for t in ranking.topics] == [f"{prefix}.ranks.v1", f"{prefix}.status.v1"]
    assert pricing.status_topic == ranking.status_topic


def test_fast_polls_are_stretched_to_the_plans():
    settings = settings_for(
        "localhost:9092",
        PRICING_POLL_SECONDS="1",
        RANKING_POLL_SECONDS="1",
        PRICING_FULL_LISTING_SECONDS="0",
    )

    assert pricing_job(settings).interval == pytest.approx(5 * 31 * 86400 / 9985)
    assert ranking_job(settings).interval == pytest.approx(25.6)  # 2 pages, 90 % of 7500/day


def test_a_plan_too_small_for_the_depth_cannot_start():
    settings = settings_for("localhost:9092", CMC_MONTHLY_CREDITS="10")

    with pytest.raises(BudgetError, match="raise CMC_MONTHLY_CREDITS above 15"):
        pricing_job(settings)


async def test_status_follows_each_poll(bootstrap_servers, fake_cmc, caplog):
    settings = settings_for(
        bootstrap_servers,
        CMC_BASE_URL=fake_cmc["url"],
        PRICING_DEPTH="20",
        PRICING_POLL_SECONDS="0.2",
        CMC_MONTHLY_CREDITS="100000000",
        CMC_CALLS_PER_MINUTE="600",
        PRODUCER_RETRY_ATTEMPTS="1",
    )
    job = pricing_job(settings)
    caplog.set_level(logging.INFO, logger="topcoins.producers")
    stop = asyncio.Event()
    task = asyncio.create_task(serve(job, settings, stop=stop, registry=CollectorRegistry()))
    consumer = AIOKafkaConsumer(
        job.status_topic.name,
        job.topic.name,
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
    )
    statuses: list[ProducerStatus] = []
    snapshot_ids: list[str] = []
    try:
        while not fake_cmc["keys"] and not task.done():
            await asyncio.sleep(0.05)
        await consumer.start()
        async with asyncio.timeout(30):
            while not statuses or statuses[-1].consecutive_failures < 2:
                message = await consumer.getone()
                if message.topic == job.topic.name:
                    snapshot_ids.append(decode_as(PriceSnapshot, message.value).snapshot_id)
                    continue
                assert message.key == b"coinmarketcap"
                reported = decode_as(ProducerStatus, message.value)
                if _credit_ledger_save(reported, statuses[-1] if statuses else None):
                    continue
                statuses.append(reported)
                if len(statuses) == 1:
                    fake_cmc["status"] = 500  # from now on every poll fails
    finally:
        stop.set()
        status = await asyncio.wait_for(task, timeout=30)
        await consumer.stop()

    assert status == EXIT_OK
    first, *_, last = statuses
    assert first.consecutive_failures == 0
    assert first.last_snapshot_id == snapshot_ids[0]
    assert first.poll_interval_seconds == job.interval == 0.2
    assert (last.last_error_kind, last.last_snapshot_id) == ("server", snapshot_ids[-1])
    assert "HTTP 500" in (last.last_error or "")
    assert API_KEY not in str(statuses)
    schedule = next(r for r in caplog.records if "polls every" in r.getMessage())
    assert schedule.schedule["poll_interval_seconds"] == job.interval


def _credit_ledger_save(status: ProducerStatus, previous: ProducerStatus | None) -> bool:
    """True for the statuses sent before a call only to save the credit ledger."""
    if previous is None:
        return status.last_success_at is None and status.last_error is None
    unchanged = dataclasses.replace(status, credits_paid_until=previous.credits_paid_until)
    return unchanged == previous


def test_a_job_never_shows_its_key():
    settings = settings_for("localhost:9092", CRYPTOCOMPARE_API_KEY="cc-secret-91f3")

    assert API_KEY not in repr(pricing_job(settings))
    assert "cc-secret-91f3" not in repr(ranking_job(settings))


def offline(job: ProducerJob, monkeypatch: pytest.MonkeyPatch) -> ProducerJob:
    """``job`` with its credit journal (which reads and writes Kafka) made a no-op."""
    if job.credit_journal is not None:

        async def nothing(*args: object) -> None:
            return None

        monkeypatch.setattr(job.credit_journal, "recover", nothing)
        monkeypatch.setattr(job.credit_journal, "save", nothing)
    return job


@pytest.mark.parametrize("make_job", [pricing_job, ranking_job])
async def test_dropped_assets_are_counted_by_reason_on_the_metrics(
    make_job, fixture_json, monkeypatch
):
    cmc = fixture_json("cmc_listings_2024-09-17T1600Z_limit20.json")
    cmc["data"][3]["quote"]["USD"]["last_updated"] = "9999-12-31T23:00:00-05:00"
    cc = fixture_json("cc_totalvolfull_2020-05-04_page0_limit10.json")
    cc["Data"][3]["CoinInfo"]["Name"] = "=CMD()"
    cmc["status"]["total_count"], cc["MetaData"] = 20, {"Count": 10}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=cc if "top" in request.url.path else cmc)

    settings = settings_for("localhost:9092", PRICING_FULL_LISTING_SECONDS="0", PRICING_DEPTH="20")
    job = offline(make_job(settings), monkeypatch)
    registry = CollectorRegistry()
    metrics = ProducerMetrics(job.provider, registry)
    async with (
        httpx.AsyncClient(base_url="http://x", transport=httpx.MockTransport(answer)) as http,
        job.open_fetch(http, asyncio.Event(), metrics) as fetch,
    ):
        await fetch()

    reason = "timestamp_out_of_range" if make_job is pricing_job else "symbol_invalid"
    labels = {"provider": job.provider, "reason": reason}
    assert registry.get_sample_value("topcoins_producer_dropped_assets_total", labels) == 1


async def test_out_of_range_market_values_are_counted_as_nulled_on_the_metrics(
    fixture_json, monkeypatch
):
    cmc = fixture_json("cmc_listings_2024-09-17T1600Z_limit20.json")
    cmc["data"][2]["quote"]["USD"]["market_cap"] = -1.0
    cmc["data"][5]["quote"]["USD"]["percent_change_24h"] = -250.0
    cmc["status"]["total_count"] = 20

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=cmc)

    settings = settings_for("localhost:9092", PRICING_FULL_LISTING_SECONDS="0", PRICING_DEPTH="20")
    job = offline(pricing_job(settings), monkeypatch)
    registry = CollectorRegistry()
    metrics = ProducerMetrics(job.provider, registry)
    async with (
        httpx.AsyncClient(base_url="http://x", transport=httpx.MockTransport(answer)) as http,
        job.open_fetch(http, asyncio.Event(), metrics) as fetch,
    ):
        snapshot = await fetch()

    assert len(snapshot.quotes) == 20
    for reason in ("negative_market_cap", "number_out_of_range"):
        labels = {"provider": job.provider, "reason": reason}
        assert registry.get_sample_value("topcoins_producer_nulled_values_total", labels) == 1
    assert registry.get_sample_value("topcoins_producer_dropped_assets_total", labels) is None


@pytest.mark.parametrize("raw", ["sk-strip-1\n", "sk-strip-1\r\n", "  sk-strip-1 \t"])
async def test_a_key_with_surrounding_whitespace_is_sent_stripped(raw, fixture_json, monkeypatch):
    sent: list[str | None] = []
    cmc = fixture_json("cmc_listings_2024-09-17T1600Z_limit20.json")
    cc = fixture_json("cc_totalvolfull_2020-05-04_page0_limit10.json")
    cc["MetaData"] = {"Count": 10}  # one page

    def answer(request: httpx.Request) -> httpx.Response:
        ranking = "top" in request.url.path
        header = request.headers.get("authorization" if ranking else "X-CMC_PRO_API_KEY")
        sent.append(header)
        return httpx.Response(200, json=cc if ranking else cmc)

    settings = settings_for(
        "localhost:9092",
        CMC_API_KEY=raw,
        CRYPTOCOMPARE_API_KEY=raw,
        PRICING_FULL_LISTING_SECONDS="0",
        PRICING_DEPTH="20",
    )
    for job in (offline(pricing_job(settings), monkeypatch), ranking_job(settings)):
        metrics = ProducerMetrics(job.provider, CollectorRegistry())
        async with (
            httpx.AsyncClient(base_url="http://x", transport=httpx.MockTransport(answer)) as http,
            job.open_fetch(http, asyncio.Event(), metrics) as fetch,
        ):
            await fetch()

    assert sent[0] == "sk-strip-1"
    assert sent[-1] == "Apikey sk-strip-1"


@pytest.mark.parametrize(
    ("base_url", "warned"),
    [("https://min-api.cryptocompare.com", True), ("http://127.0.0.1:6668", False)],
)
async def test_an_empty_key_is_a_warning_only_against_the_real_provider(base_url, warned, caplog):
    settings = settings_for(f"127.0.0.1:{free_port()}", CRYPTOCOMPARE_BASE_URL=base_url)
    caplog.set_level(logging.INFO, logger="topcoins.producers")
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.1, stop.set)

    await asyncio.wait_for(
        serve(ranking_job(settings), settings, stop=stop, registry=CollectorRegistry()), timeout=10
    )

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert ("CRYPTOCOMPARE_API_KEY is empty" in " ".join(warnings)) is warned


async def test_a_stuck_ranked_ids_reader_shows_in_the_pricing_producers_readyz(monkeypatch):
    settings = settings_for("localhost:9092")
    top = settings.topics.top.name

    def failing_reader(*args: Any, **kwargs: Any) -> RankedIdsReader:
        kwargs.update(retry_first_s=0.01, retry_max_s=0.01)
        kwargs["consumer_factory"] = lambda: ScriptedConsumer(top, OSError("broker unreachable"))
        return RankedIdsReader(*args, **kwargs)

    monkeypatch.setattr(main, "RankedIdsReader", failing_reader)
    job = pricing_job(settings)
    registry = CollectorRegistry()
    port = settings.pricing_ops_port
    async with (
        httpx.AsyncClient() as http,
        job.open_fetch(http, asyncio.Event(), ProducerMetrics(job.provider, registry)),
        OpsServer("127.0.0.1", port, lambda: True, registry, details=job.consumers.readyz_fields),
    ):
        await wait_for(lambda: bool(job.consumers.stuck()))
        ready = await http.get(f"http://127.0.0.1:{port}/readyz")
        metrics = await http.get(f"http://127.0.0.1:{port}/metrics")

    assert ready.status_code == 200  # it keeps polling with the last ids; see producers.main
    assert list(ready.json()["stuck_consumers"]) == [top]
    assert "failed attempts in a row" in ready.json()["stuck_consumers"][top]
    gauge = f'topcoins_producer_consumer_stuck{{provider="coinmarketcap",topic="{top}"}} 1.0'
    assert gauge in metrics.text
