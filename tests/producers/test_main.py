"""The producer process lifecycle: startup failures, auth failure, clean stop."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from tests.conftest import load_fixture
from tests.producers.test_jobs import API_KEY, free_port, settings_for
from topcoins.producers.jobs import pricing_job, ranking_job
from topcoins.producers.main import EXIT_AUTH_ERROR, EXIT_OK, EXIT_STARTUP_FAILURE, serve
from topcoins.schemas.codec import decode_as
from topcoins.schemas.records import PriceSnapshot, ProducerStatus


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
