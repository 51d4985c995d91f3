"""Prometheus metrics of the stream worker, registered on a registry the caller chooses."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["WorkerMetrics"]


class WorkerMetrics:
    """Every worker metric; tests pass their own ``CollectorRegistry``."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.skipped_messages = Counter(
            "topcoins_worker_skipped_messages",
            "Input messages skipped: undecodable, wrong record type, stale or duplicate.",
            ["topic", "reason"],
            registry=registry,
        )
        self.joins = Counter(
            "topcoins_worker_joins", "Joins of a ranking with prices.", registry=registry
        )
        self.unmatched_assets = Gauge(
            "topcoins_worker_unmatched_assets",
            "Ranked assets without a CoinMarketCap price in the current generation.",
            registry=registry,
        )
        self.backlog_snapshots = Counter(
            "topcoins_worker_backlog_snapshots",
            "Snapshots stored without a join because newer messages waited on their partition.",
            registry=registry,
        )
        self.join_seconds = Histogram(
            "topcoins_worker_join_seconds",
            "Time to join one generation (CPU only, no I/O).",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        )
        self.rows_written = Counter(
            "topcoins_worker_rows_written",
            "Messages written to the top topic: changed rows and tombstones.",
            ["kind"],
            registry=registry,
        )
