"""Prometheus metrics of one producer process, labelled by ``provider``.

Create one ``ProducerMetrics`` per process (the default registry refuses duplicates);
tests pass their own ``CollectorRegistry``. Label values are fixed words (provider,
kind, window, call); no label ever holds a key or a provider message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from topcoins.producers.errors import RateLimitUsage

__all__ = [
    "CALL_SECONDS",
    "PREFIX",
    "STAGE_SECONDS",
    "ProducerMetrics",
    "call_outcome",
    "timed_stage",
]

PREFIX = "topcoins_producer_"
_FETCH_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# Process-wide, on the default registry (one producer per process): the hooks in the
# provider clients and the publisher observe it without a metrics object to hand.
STAGE_SECONDS = Histogram(
    PREFIX + "stage_seconds",
    "Time spent per stage of a snapshot: parse (JSON of one provider answer), validate "
    "(typed records of one answer), encode (Avro), publish (send until the broker acks).",
    ("provider", "stage"),
    buckets=STAGE_BUCKETS,
)


CALL_SECONDS = Histogram(
    PREFIX + "call_duration_seconds",
    "Time of one provider HTTP call (one page, no retries), by outcome: ok (2xx), "
    "rate_limited (429), client_error (other 4xx), server_error (5xx), timeout, "
    "transport_error.",
    ("provider", "outcome"),
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def call_outcome(status_code: int) -> str:
    """The ``outcome`` label of an HTTP answer with ``status_code``."""
    if status_code == 429:
        return "rate_limited"
    if 400 <= status_code < 500:
        return "client_error"
    if status_code >= 500:
        return "server_error"
    return "ok"


def timed_stage(provider: str, stage: str) -> Any:
    """``with timed_stage("coinmarketcap", "parse"):`` observes the block's duration."""
    return STAGE_SECONDS.labels(provider, stage).time()


class ProducerMetrics:
    """Counters, gauges and the fetch-duration histogram, bound to one ``provider`` label."""

    def __init__(self, provider: str, registry: CollectorRegistry = REGISTRY) -> None:
        self.provider = provider

        def counter(name: str, documentation: str, *labels: str) -> Counter:
            return Counter(PREFIX + name, documentation, ("provider", *labels), registry=registry)

        def gauge(name: str, documentation: str, *labels: str) -> Gauge:
            return Gauge(PREFIX + name, documentation, ("provider", *labels), registry=registry)

        self._polls = counter("polls", "Polls by outcome.", "outcome")
        self._published = counter("publish", "Snapshots published to Kafka.")
        self._errors = counter(
            "errors",
            "Failed polls by kind (rate_limit, auth, server, timeout, bad_response, "
            "parameter, publish).",
            "kind",
        )
        self._retries = counter("retries", "Provider calls retried after an error.")
        self._rejected = counter(
            "rejected_answers",
            "Provider answers rejected as malformed or schema-invalid (never published).",
        )
        self._last_success = gauge(
            "last_success_timestamp_seconds", "Unix time of the last published snapshot."
        )
        self._fetch_seconds = Histogram(
            PREFIX + "fetch_duration_seconds",
            "Time to fetch one snapshot (all pages and retries).",
            ("provider",),
            buckets=_FETCH_BUCKETS,
            registry=registry,
        )
        self._items = gauge("snapshot_items", "Entries in the last published snapshot.")
        self._bytes = gauge(
            "snapshot_bytes", "Encoded size of the last published snapshot (before compression)."
        )
        self._calls_made = gauge(
            "rate_limit_calls_made",
            "Calls made per window, as last reported by the provider.",
            "window",
        )
        self._max_calls = gauge(
            "rate_limit_max_calls",
            "Calls allowed per window, as last reported by the provider.",
            "window",
        )
        self._skipped = counter(
            "skipped_messages",
            "Kafka messages read and skipped because they could not be decoded or applied.",
        )
        self._interval = gauge(
            "poll_interval_seconds",
            "The effective poll interval (after credit budget and rate limits).",
        )
        self._credits_per_call = gauge(
            "budget_credits_per_call",
            "Provider credits one call costs, by call (listings, quotes).",
            "call",
        )
        self._credits_spent = counter(
            "budget_credits",
            "Credits charged to the budget ledger (every call sent, whatever the answer).",
        )
        self._waits = counter(
            "rate_limit_waits",
            "Calls held back by our own limits, by the limit that decided (second, minute, "
            "hour, day, month, credits, retry_after).",
            "limit",
        )
        self._wait_seconds = counter(
            "rate_limit_wait_seconds", "Seconds calls were held back by our own limits."
        )
        self._status_failures = counter(
            "status_publish_failures",
            "ProducerStatus records that could not be published (never fatal).",
        )
        self._dropped = counter(
            "dropped_assets",
            "Assets left out of an answer because the records cannot carry a value, by reason "
            "(timestamp_out_of_range, number_out_of_range, negative_volume, symbol_too_long, "
            "symbol_invalid, name_too_long, name_invalid, text_too_long, text_invalid).",
            "reason",
        )
        self._nulled = counter(
            "nulled_values",
            "Optional values (market cap, 24 h change) out of range and published as null, "
            "their asset kept, by reason (number_out_of_range, negative_market_cap).",
            "reason",
        )
        self._plan_credits = gauge(
            "budget_plan_credits",
            "Credits the provider plan allows per 31 days (CMC_MONTHLY_CREDITS).",
        )
        self._credits_available = gauge(
            "budget_credits_available",
            "Credits calls may still charge before the budget ledger holds them back to the "
            "plan's pace (0: the next call waits).",
        )
        self._failures_in_a_row = gauge(
            "consecutive_failed_polls",
            "Polls that failed in a row since the last successful one (0 after a success).",
        )
        self._consumer_lag = gauge(
            "consumer_lag_messages",
            "Messages between a Kafka reader's position and its topic's high watermark, by "
            "reader (ranked_ids: the pricing producer's reader of the top topic).",
            "reader",
        )
        self._consumer_stuck = gauge(
            "consumer_stuck",
            "1 while the consumer of a topic keeps failing or makes no progress past waiting "
            "data (the pricing producer's reader of the top topic).",
            "topic",
        )
        # The counters every service exposes show 0 from the start, not only once they move.
        for counter in (self._retries, self._rejected, self._skipped, self._status_failures):
            counter.labels(provider)
        self._failures_in_a_row.labels(provider)

    def poll(self, *, success: bool) -> None:
        """Count one finished poll."""
        self._polls.labels(self.provider, "success" if success else "failure").inc()
        failures = self._failures_in_a_row.labels(self.provider)
        if success:
            failures.set(0)
        else:
            failures.inc()

    def published(self, *, items: int, size_bytes: int, at_unix: float) -> None:
        """Record a published snapshot."""
        self._published.labels(self.provider).inc()
        self._items.labels(self.provider).set(items)
        self._bytes.labels(self.provider).set(size_bytes)
        self._last_success.labels(self.provider).set(at_unix)

    def error(self, kind: str, *, rejected: bool = False) -> None:
        """Count a failed poll by kind; ``rejected`` also counts a discarded answer."""
        self._errors.labels(self.provider, kind).inc()
        if rejected:
            self._rejected.labels(self.provider).inc()

    def retried(self) -> None:
        """Count one retry."""
        self._retries.labels(self.provider).inc()

    def fetch_duration(self, seconds: float) -> None:
        """Observe how long one fetch took."""
        self._fetch_seconds.labels(self.provider).observe(seconds)

    def rate_limit(self, usage: RateLimitUsage) -> None:
        """Expose the provider's own rate-limit counters."""
        for window, calls in usage.calls_made.items():
            self._calls_made.labels(self.provider, window).set(calls)
        for window, calls in usage.max_calls.items():
            self._max_calls.labels(self.provider, window).set(calls)

    def dropped_asset(self, reason: str) -> None:
        """Count one asset left out of an answer, by ``reason`` (an ``OutOfRange`` reason)."""
        self._dropped.labels(self.provider, reason).inc()

    def nulled_value(self, reason: str) -> None:
        """Count one optional value published as null because it was out of range."""
        self._nulled.labels(self.provider, reason).inc()

    def skipped(self) -> None:
        """Count one Kafka message that was skipped."""
        self._skipped.labels(self.provider).inc()

    def poll_interval(self, seconds: float) -> None:
        """Expose the effective poll interval."""
        self._interval.labels(self.provider).set(seconds)

    def credits_per_call(self, call: str, credits: int) -> None:
        """Expose what one ``call`` (``listings``, ``quotes``) costs."""
        self._credits_per_call.labels(self.provider, call).set(credits)

    def watch_credits(self, plan_credits: int, available: Callable[[], float]) -> None:
        """Expose the plan's credits and, at each scrape, ``available()`` credits."""
        self._plan_credits.labels(self.provider).set(plan_credits)
        self._credits_available.labels(self.provider).set_function(available)

    def consumer_lag(self, reader: str, messages: int) -> None:
        """Expose how many messages ``reader`` has still to read."""
        self._consumer_lag.labels(self.provider, reader).set(messages)

    def watch_stuck(self, topic: str, reason: Callable[[], str | None]) -> None:
        """Expose, at each scrape, whether the consumer of ``topic`` is stuck (``reason()``)."""
        self._consumer_stuck.labels(self.provider, topic).set_function(
            lambda: 0 if reason() is None else 1
        )

    def credits_spent(self, credits: int) -> None:
        """Count credits charged to the budget."""
        self._credits_spent.labels(self.provider).inc(credits)

    def rate_limit_wait(self, limit: str, seconds: float) -> None:
        """Count a call held back by ``limit`` for ``seconds``."""
        self._waits.labels(self.provider, limit or "unknown").inc()
        self._wait_seconds.labels(self.provider).inc(seconds)

    def status_publish_failed(self) -> None:
        """Count a status record that could not be published."""
        self._status_failures.labels(self.provider).inc()
