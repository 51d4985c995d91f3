"""Prometheus metrics of the web service, on a registry of its own.

* ``topcoins_web_requests_total{route,status}`` (route is the path template, ``unmatched``
  for 404s) and ``topcoins_web_request_duration_seconds{route}``, counted in plain dicts
  by the middleware in ``topcoins.web.middleware``.
* replica figures read at scrape time from ``replica.stats`` and ``replica.view``:
  ``topcoins_web_generations_total``, ``topcoins_web_incomplete_generations_total``,
  ``topcoins_web_skipped_messages_total``, ``topcoins_web_messages_applied_total``,
  ``topcoins_web_replica_lag_messages``, ``topcoins_web_replica_running``,
  ``topcoins_web_last_generation_timestamp_seconds``,
  ``topcoins_web_ranking_updated_timestamp_seconds``,
  ``topcoins_web_prices_updated_timestamp_seconds``, ``topcoins_web_ranked_assets``,
  ``topcoins_web_unmatched_assets``, ``topcoins_web_replica_caught_up``,
  ``topcoins_web_status_messages_applied_total``,
  ``topcoins_web_skipped_status_messages_total``, ``topcoins_web_consumer_stuck{topic}``
  (1 while that topic's consumer is stuck);
* freshness of the served view per source (``source`` = ``ranking`` or ``prices``):
  ``topcoins_web_data_age_seconds``, ``topcoins_web_data_stale`` (1 when stale),
  ``topcoins_web_stale_after_seconds``;
* ``topcoins_web_stage_seconds{stage}`` (``apply``, ``render``; see ``topcoins.web.stages``);
* ``topcoins_web_freshness_seconds{source}`` and ``topcoins_web_generation_lag_seconds``,
  observed per served generation (see ``topcoins.web.delivery``);
* ``topcoins_web_history_skipped_messages_total{reason}``: raw messages the ``at=`` reader
  walked past (``undecodable``, ``from_future``; ``topcoins.history.HistoryStats``);
* ``topcoins_web_build_info{version,git_commit,build_time}`` and the process collectors.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from topcoins.web.delivery import FRESHNESS_SECONDS, GENERATION_LAG_SECONDS
from topcoins.web.freshness import Freshness
from topcoins.web.replica import Replica
from topcoins.web.stages import STAGE_SECONDS
from topcoins.web.version import BuildInfo

__all__ = [
    "CONTENT_TYPE_LATEST",
    "HistorySkips",
    "RequestCounter",
    "WebMetrics",
]

# The reasons ``topcoins_web_history_skipped_messages_total`` shows from the start.
HISTORY_SKIP_REASONS = ("undecodable", "from_future")


# Upper bounds of the request-duration buckets, in seconds (+Inf is implied).
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class RequestCounter(Collector):
    """Request counts by route template and status code, and durations by route.

    Plain dicts and a bisect: the hot path pays no lock and no label lookup.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}
        # route -> [count per bucket (the last one +Inf), sum of seconds]
        self.durations: dict[str, tuple[list[int], list[float]]] = {}

    def inc(self, route: str, status: int, seconds: float | None = None) -> None:
        """Count one answered request; ``seconds`` is how long answering it took."""
        key = (route, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        if seconds is None:
            return
        found = self.durations.get(route)
        if found is None:
            found = self.durations[route] = ([0] * (len(REQUEST_BUCKETS) + 1), [0.0])
        found[0][bisect_left(REQUEST_BUCKETS, seconds)] += 1
        found[1][0] += seconds

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "topcoins_web_requests", "HTTP requests answered.", labels=["route", "status"]
        )
        for (route, status), count in sorted(self.counts.items()):
            family.add_metric([route, str(status)], count)
        yield family
        durations = HistogramMetricFamily(
            "topcoins_web_request_duration_seconds",
            "Time from receiving an HTTP request to sending its whole answer, by route.",
            labels=["route"],
        )
        for route, (counts, total) in sorted(self.durations.items()):
            cumulative = list(accumulate(counts))
            bounds = [*(str(b) for b in REQUEST_BUCKETS), "+Inf"]
            durations.add_metric([route], list(zip(bounds, cumulative, strict=True)), total[0])
        yield durations


class HistorySkips(Collector):
    """Raw messages the history reader (``GET /?at=``) walked past, by reason.

    ``reader()`` is the open reader, or None (none yet, or a fake without ``stats``)."""

    def __init__(self, reader: Callable[[], Any]) -> None:
        self.reader = reader

    def collect(self) -> Iterator[Metric]:
        stats = getattr(self.reader(), "stats", None)
        counts = dict.fromkeys(HISTORY_SKIP_REASONS, 0)
        counts.update(getattr(stats, "skipped_by_reason", {}))
        family = CounterMetricFamily(
            "topcoins_web_history_skipped_messages",
            "Raw snapshot messages the at= reader walked past, by reason: undecodable (or of "
            "the wrong type), from_future (fetched more than 5 minutes ahead of its clock).",
            labels=["reason"],
        )
        for reason, count in sorted(counts.items()):
            family.add_metric([reason], count)
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
        stuck = GaugeMetricFamily(
            "topcoins_web_consumer_stuck",
            "1 while the consumer of a topic keeps failing or makes no progress past waiting data.",
            labels=["topic"],
        )
        for topic, reason in self.replica.consumers.items():
            stuck.add_metric([topic], 0 if reason is None else 1)
        yield stuck
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
            STAGE_SECONDS,
            FRESHNESS_SECONDS,
            GENERATION_LAG_SECONDS,
        ]
        if freshness is not None:
            collectors.append(_FreshnessCollector(freshness))
        for collector in collectors:
            self.registry.register(collector)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
