"""Prometheus metrics of the web service, on a registry of its own.

* ``topcoins_web_requests_total{route,status}`` (route is the path template, ``unmatched``
  for 404s), counted in a plain dict by the middleware in ``topcoins.web.middleware``.
* replica figures read at scrape time from ``replica.stats`` and ``replica.view``:
  ``topcoins_web_generations_total``, ``topcoins_web_incomplete_generations_total``,
  ``topcoins_web_skipped_messages_total``, ``topcoins_web_messages_applied_total``,
  ``topcoins_web_replica_lag_messages``, ``topcoins_web_replica_running``,
  ``topcoins_web_last_generation_timestamp_seconds``,
  ``topcoins_web_ranking_updated_timestamp_seconds``,
  ``topcoins_web_prices_updated_timestamp_seconds``, ``topcoins_web_ranked_assets``,
  ``topcoins_web_unmatched_assets``, ``topcoins_web_replica_caught_up``,
  ``topcoins_web_status_messages_applied_total``,
  ``topcoins_web_skipped_status_messages_total``;
* freshness of the served view per source (``source`` = ``ranking`` or ``prices``):
  ``topcoins_web_data_age_seconds``, ``topcoins_web_data_stale`` (1 when stale),
  ``topcoins_web_stale_after_seconds``;
* ``topcoins_web_build_info{version,git_commit,build_time}`` and the process collectors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from topcoins.web.freshness import Freshness
from topcoins.web.replica import Replica
from topcoins.web.version import BuildInfo

__all__ = [
    "CONTENT_TYPE_LATEST",
    "RequestCounter",
    "WebMetrics",
]


class RequestCounter(Collector):
    """Request counts by route template and status code."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}

    def inc(self, route: str, status: int) -> None:
        """Count one answered request."""
        key = (route, status)
        self.counts[key] = self.counts.get(key, 0) + 1

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "topcoins_web_requests", "HTTP requests answered.", labels=["route", "status"]
        )
        for (route, status), count in sorted(self.counts.items()):
            family.add_metric([route, str(status)], count)
        yield family


class _ReplicaCollector(Collector):
    def __init__(self, replica: Replica) -> None:
        self.replica = replica

    def collect(self) -> Iterator[Metric]:
        stats = self.replica.stats
        view = self.replica.view
        yield _counter(
            "topcoins_web_generations", "Complete generations applied.", stats.generations
        )
        yield _counter(
            "topcoins_web_incomplete_generations",
            "TopListMeta messages not published because rows were missing.",
            stats.incomplete_generations,
        )
        yield _counter(
            "topcoins_web_skipped_messages",
            "Top-topic messages skipped because they did not decode or broke the key contract.",
            stats.skipped_messages,
        )
        yield _counter(
            "topcoins_web_messages_applied", "Top-topic messages applied.", stats.messages_applied
        )
        yield _gauge(
            "topcoins_web_replica_running",
            "1 while the Kafka consumer is running.",
            1 if self.replica.running else 0,
        )
        yield _gauge(
            "topcoins_web_replica_caught_up",
            "1 once the replica has read the top topic to its end and holds a complete list.",
            1 if self.replica.caught_up else 0,
        )
        yield _counter(
            "topcoins_web_status_messages_applied",
            "Status-topic messages applied.",
            stats.status_messages_applied,
        )
        yield _counter(
            "topcoins_web_skipped_status_messages",
            "Status-topic messages skipped because they did not decode or broke the key contract.",
            stats.skipped_status_messages,
        )
        yield _gauge(
            "topcoins_web_replica_lag_messages",
            "Messages between the replica's position and the top topic's high watermark.",
            stats.lag,
        )
        yield _gauge(
            "topcoins_web_last_generation_timestamp_seconds",
            "Unix time at which the served view was published.",
            stats.last_generation_at,
        )
        yield _gauge(
            "topcoins_web_ranking_updated_timestamp_seconds",
            "Unix time of the ranking behind the served view.",
            view.ranking_updated_at.timestamp() if view else None,
        )
        yield _gauge(
            "topcoins_web_prices_updated_timestamp_seconds",
            "Unix time of the prices behind the served view.",
            view.prices_updated_at.timestamp() if view and view.prices_updated_at else None,
        )
        yield _gauge(
            "topcoins_web_ranked_assets",
            "Assets in the served view.",
            view.total_ranked if view else None,
        )
        yield _gauge(
            "topcoins_web_unmatched_assets",
            "Assets in the served view without a CoinMarketCap match.",
            view.unmatched if view else None,
        )


class _FreshnessCollector(Collector):
    def __init__(self, freshness: Callable[[], Freshness]) -> None:
        self.freshness = freshness

    def collect(self) -> Iterator[Metric]:
        freshness = self.freshness()
        age = GaugeMetricFamily(
            "topcoins_web_data_age_seconds",
            "Whole seconds since the served data of each source was fetched from its provider.",
            labels=["source"],
        )
        stale = GaugeMetricFamily(
            "topcoins_web_data_stale",
            "1 when the served data of a source is stale (or missing), else 0.",
            labels=["source"],
        )
        threshold = GaugeMetricFamily(
            "topcoins_web_stale_after_seconds",
            "Age after which the served data of a source counts as stale.",
            labels=["source"],
        )
        for item in freshness.sources:
            labels = [str(item.source)]
            if item.age_seconds is not None:
                age.add_metric(labels, item.age_seconds)
            stale.add_metric(labels, 1 if item.stale else 0)
            threshold.add_metric(labels, item.stale_after_seconds)
        yield from (age, stale, threshold)


class _BuildInfoCollector(Collector):
    def __init__(self, build: BuildInfo) -> None:
        self.build = build

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "topcoins_web_build_info",
            "Version, git commit and build time of the running code (always 1).",
            labels=["version", "git_commit", "build_time"],
        )
        family.add_metric([self.build.version, self.build.git_commit, self.build.build_time], 1)
        yield family


def _counter(name: str, doc: str, value: float) -> Metric:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float | None) -> Metric:
    family = GaugeMetricFamily(name, doc)
    if value is not None:
        family.add_metric([], value)
    return family


class WebMetrics:
    """The web service's registry: requests, replica and build info, plus process metrics."""

    def __init__(
        self,
        replica: Replica,
        build: BuildInfo,
        freshness: Callable[[], Freshness] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = RequestCounter()
        collectors: list[Collector] = [
            self.requests,
            _ReplicaCollector(replica),
            _BuildInfoCollector(build),
            PROCESS_COLLECTOR,
            PLATFORM_COLLECTOR,
            GC_COLLECTOR,
        ]
        if freshness is not None:
            collectors.append(_FreshnessCollector(freshness))
        for collector in collectors:
            self.registry.register(collector)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
