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
        self.invalid_prices = Gauge(
            "topcoins_worker_invalid_prices",
            "Matched assets whose CoinMarketCap price was 0, negative or not finite (served "
            "as null) in the current generation.",
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
        self.stage_seconds = Histogram(
            "topcoins_worker_stage_seconds",
            "Time per stage of one input snapshot, by its kind (ranking, prices): decode "
            "(Avro), join, write (encode the rows, send them, wait for the acks).",
            ["kind", "stage"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "topcoins_worker_consumer_lag_messages",
            "Messages after the one just processed on an input topic (its high watermark "
            "minus the next offset), as of the last message processed.",
            ["topic"],
            registry=registry,
        )
        self.consumer_stuck = Gauge(
            "topcoins_worker_consumer_stuck",
            "1 while the agent of an input topic keeps failing or makes no progress past "
            "waiting data.",
            ["topic"],
            registry=registry,
        )
        self.last_publish = Gauge(
            "topcoins_worker_last_publish_timestamp_seconds",
            "Unix time at which the last generation was written to the top topic and acked "
            "(0 before the first).",
            registry=registry,
        )
        self.rows_written = Counter(
            "topcoins_worker_rows_written",
            "Messages written to the top topic: changed rows and tombstones.",
            ["kind"],
            registry=registry,
        )
