"""``ProducerMetrics``: the credit budget's figures, read at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from topcoins.producers.budget import CreditLedger
from topcoins.producers.metrics import ProducerMetrics


def test_watched_credits_are_read_from_the_ledger_at_each_scrape() -> None:
    registry = CollectorRegistry()
    metrics = ProducerMetrics("coinmarketcap", registry)
    ledger = CreditLedger(seconds_per_credit=10.0, tolerance_credits=5, now=0.0)
    metrics.watch_credits(10_000, lambda: ledger.available(0.0))
    labels = {"provider": "coinmarketcap"}

    assert registry.get_sample_value("topcoins_producer_budget_plan_credits", labels) == 10_000
    assert registry.get_sample_value("topcoins_producer_budget_credits_available", labels) == 5
    ledger.record(4, 0.0)
    assert registry.get_sample_value("topcoins_producer_budget_credits_available", labels) == 1
