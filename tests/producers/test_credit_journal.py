"""``producers.credit_journal``: the CoinMarketCap credit ledger survives restarts, so a
crash loop spends no more than one producer running all along (real broker)."""

from __future__ import annotations

import time

import pytest
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from tests.streams.raw import fresh_topics
from topcoins.producers.budget import CreditPlan, PricingBudget, plan_pricing
from topcoins.producers.credit_journal import CreditJournal, JournaledPacer, last_status
from topcoins.producers.errors import LocalLimitError
from topcoins.producers.metrics import ProducerMetrics
from topcoins.producers.publisher import SnapshotPublisher
from topcoins.producers.status import StatusReporter
from topcoins.schemas.records import ProducerStatus
from topcoins.schemas.topics import Topics

pytestmark = pytest.mark.e2e  # several producer lives on a real broker (a few seconds)

PROVIDER = "coinmarketcap"


async def one_life(bootstrap: str, topics: Topics, budget: PricingBudget, recover: bool) -> int:
    """Start as the pricing producer does, spend every credit the ledger admits now (each
    call saved before it would be sent), then die before any poll status is written."""
    publisher = SnapshotPublisher(bootstrap, "pricing-producer")
    await publisher.start()
    try:

        async def send(status: ProducerStatus) -> int:
            return await publisher.publish_status(topics.status.name, PROVIDER.encode(), status)

        reporter = StatusReporter(
            provider=PROVIDER,
            component="pricing-producer",
            interval=budget.interval,
            send=send,
            metrics=ProducerMetrics(PROVIDER, CollectorRegistry()),
        )
        journal = CreditJournal(bootstrap, topics.status, PROVIDER.encode())
        journal.reporter = reporter
        if recover:
            await journal.recover()
        ledger = budget.ledger(time.monotonic())
        journal.attach(ledger)
        pacer = JournaledPacer(PROVIDER, (ledger,), journal=journal, max_wait=0)
        spent = 0
        try:
            while True:
                await pacer.acquire(budget.listing_credits)
                spent += budget.listing_credits
        except LocalLimitError:
            return spent
    finally:
        await publisher.stop()


async def test_a_crash_loop_cannot_spend_more_than_one_long_lived_ledger(bootstrap_servers):
    topics = await fresh_topics(bootstrap_servers, "credits")
    budget = plan_pricing(
        CreditPlan(monthly_credits=1000, calls_per_minute=1000),
        depth=1000,
        ranked=200,
        poll_seconds=60,
        full_listing_seconds=0,
        retry_attempts=3,
    )
    burst = budget.tolerance_credits + budget.listing_credits  # what a fresh ledger admits
    assert budget.seconds_per_credit > 60  # so no credit is earned back during the test

    lives = [await one_life(bootstrap_servers, topics, budget, recover=True) for _ in range(4)]

    assert lives == [burst, 0, 0, 0]  # the restarts resumed the first life's ledger
    saved = await last_status(bootstrap_servers, topics.status, PROVIDER.encode())
    assert saved is not None and saved.credits_paid_until is not None
    ahead = saved.credits_paid_until.timestamp() - time.time()
    assert ahead > burst * budget.seconds_per_credit - 60  # the burst, saved before each call
    # Without the journal every life starts clean and spends the burst again.
    forgetful = [await one_life(bootstrap_servers, topics, budget, recover=False) for _ in range(2)]
    assert forgetful == [burst, burst]


async def test_no_saved_ledger_starts_a_fresh_one(bootstrap_servers):
    topics = await fresh_topics(bootstrap_servers, "credits")
    journal = CreditJournal(bootstrap_servers, topics.status, PROVIDER.encode())
    assert await journal.recover() is None


async def test_a_status_topic_that_cannot_be_read_fails_the_recovery():
    journal = CreditJournal("127.0.0.1:1", Topics.for_prefix("nowhere").status, b"x")
    with pytest.raises(KafkaError):
        await journal.recover()
