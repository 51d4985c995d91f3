"""Prometheus metrics of one producer process, labelled by ``provider``.

Create one ``ProducerMetrics`` per process (the default registry refuses duplicates);
tests pass their own ``CollectorRegistry``.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from topcoins.producers.errors import RateLimitUsage

__all__ = ["PREFIX", "ProducerMetrics"]

PREFIX = "topcoins_producer_"
_FETCH_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class ProducerMetrics:
    """Counters, gauges and the fetch-duration histogram, bound to one ``provider`` label."""

    def __init__(self, provider: str, registry: CollectorRegistry = REGISTRY) -> None:
        self.provider = provider
        labels = ("provider",)
        self._polls = Counter(
            PREFIX + "polls", "Polls by outcome.", (*labels, "outcome"), registry=registry
        )
        self._published = Counter(
            PREFIX + "publish", "Snapshots published to Kafka.", labels, registry=registry
        )
        self._errors = Counter(
            PREFIX + "errors",
            "Failed polls by kind (rate_limit, auth, server, timeout, bad_response, "
            "parameter, publish).",
            (*labels, "kind"),
            registry=registry,
        )
        self._retries = Counter(
            PREFIX + "retries", "Provider calls retried after an error.", labels, registry=registry
        )
        self._rejected = Counter(
            PREFIX + "rejected_answers",
            "Provider answers rejected as malformed or schema-invalid (never published).",
            labels,
            registry=registry,
        )
        self._last_success = Gauge(
            PREFIX + "last_success_timestamp_seconds",
            "Unix time of the last published snapshot.",
            labels,
            registry=registry,
        )
        self._fetch_seconds = Histogram(
            PREFIX + "fetch_duration_seconds",
            "Time to fetch one snapshot (all pages and retries).",
            labels,
            buckets=_FETCH_BUCKETS,
            registry=registry,
        )
        self._items = Gauge(
            PREFIX + "snapshot_items",
            "Entries in the last published snapshot.",
            labels,
            registry=registry,
        )
        self._bytes = Gauge(
            PREFIX + "snapshot_bytes",
            "Encoded size of the last published snapshot (before compression).",
            labels,
            registry=registry,
        )
        self._calls_made = Gauge(
            PREFIX + "rate_limit_calls_made",
            "Calls made per window, as last reported by the provider.",
            (*labels, "window"),
            registry=registry,
        )
        self._max_calls = Gauge(
            PREFIX + "rate_limit_max_calls",
            "Calls allowed per window, as last reported by the provider.",
            (*labels, "window"),
            registry=registry,
        )

    def poll(self, *, success: bool) -> None:
        """Count one finished poll."""
        self._polls.labels(self.provider, "success" if success else "failure").inc()

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
