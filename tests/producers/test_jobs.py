"""The producer jobs: each one's schedule, topics and fetch, without a broker."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tests.producers.test_ranked_ids import ScriptedConsumer, wait_for
from topcoins.ops import OpsServer
from topcoins.producers import jobs
from topcoins.producers.budget import BudgetError
from topcoins.producers.jobs import ProducerJob, pricing_job, ranking_job
from topcoins.producers.metrics import ProducerMetrics
from topcoins.producers.ranked_ids import RankedIdsReader
from topcoins.schemas.records import Snapshot
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


async def fetch_once(
    job: ProducerJob,
    answer: Callable[[httpx.Request], httpx.Response],
    registry: CollectorRegistry | None = None,
) -> Snapshot:
    """One snapshot fetched by ``job`` from providers that ``answer``, counted on ``registry``."""
    metrics = ProducerMetrics(job.provider, registry or CollectorRegistry())
    async with (
        httpx.AsyncClient(base_url="http://x", transport=httpx.MockTransport(answer)) as http,
        job.open_fetch(http, asyncio.Event(), metrics) as fetch,
    ):
        return await fetch()


def one_page_job(
    make_job: Callable[[Settings], ProducerJob], monkeypatch, **env: str
) -> ProducerJob:
    """``make_job``'s offline job for one page of 20 listings (pricing) or of the toplist."""
    env = {"PRICING_FULL_LISTING_SECONDS": "0", "PRICING_DEPTH": "20", **env}
    return offline(make_job(settings_for("localhost:9092", **env)), monkeypatch)


@pytest.mark.parametrize("make_job", [pricing_job, ranking_job])
async def test_dropped_assets_are_counted_by_reason_on_the_metrics(
    make_job, fixture_json, monkeypatch
):
    cmc = fixture_json("cmc_listings_2024-09-17T1600Z_limit20.json")
    cmc["data"][3]["quote"]["USD"]["last_updated"] = "9999-12-31T23:00:00-05:00"
    cc = fixture_json("cc_totalvolfull_2020-05-04_page0_limit10.json")
    cc["Data"][3]["CoinInfo"]["Name"] = "=CMD()"
    cmc["status"]["total_count"], cc["MetaData"] = 20, {"Count": 10}
    job, registry = one_page_job(make_job, monkeypatch), CollectorRegistry()

    await fetch_once(
        job,
        lambda request: httpx.Response(200, json=cc if "top" in request.url.path else cmc),
        registry,
    )

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
    job, registry = one_page_job(pricing_job, monkeypatch), CollectorRegistry()

    snapshot = await fetch_once(job, lambda request: httpx.Response(200, json=cmc), registry)

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

    for make_job in (pricing_job, ranking_job):
        job = one_page_job(make_job, monkeypatch, CMC_API_KEY=raw, CRYPTOCOMPARE_API_KEY=raw)
        await fetch_once(job, answer)

    assert sent[0] == "sk-strip-1"
    assert sent[-1] == "Apikey sk-strip-1"


async def test_a_stuck_ranked_ids_reader_shows_in_the_pricing_producers_readyz(monkeypatch):
    settings = settings_for("localhost:9092")
    top = settings.topics.top.name

    def failing_reader(*args: Any, **kwargs: Any) -> RankedIdsReader:
        kwargs.update(retry_first_s=0.01, retry_max_s=0.01)
        kwargs["consumer_factory"] = lambda: ScriptedConsumer(top, OSError("broker unreachable"))
        return RankedIdsReader(*args, **kwargs)

    monkeypatch.setattr(jobs, "RankedIdsReader", failing_reader)
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
