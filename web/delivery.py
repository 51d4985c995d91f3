"""How fresh each served generation is when this replica starts serving it.

* ``topcoins_web_freshness_seconds{source}``: end to end, from the provider fetch (the
  view's oldest ``fetched_at`` of that ``source``: ``ranking`` or ``prices``) to the
  replica serving the generation;
* ``topcoins_web_generation_lag_seconds``: from the stream worker writing the generation's
  ``TopListMeta`` (its Kafka timestamp) to the replica serving it.

Both are observed once per served generation (``TopListReplica.apply_batches``). They are
process-wide, like ``stages.STAGE_SECONDS``, and ``WebMetrics`` adds them to its registry.
"""

from __future__ import annotations

from prometheus_client import Histogram

from topcoins.web.view import TopListView

__all__ = ["FRESHNESS_SECONDS", "GENERATION_LAG_SECONDS", "observe_served"]

FRESHNESS_SECONDS = Histogram(
    "topcoins_web_freshness_seconds",
    "Seconds from the provider fetch (oldest fetched_at of the source) to this replica "
    "serving the generation, observed once per served generation.",
    ["source"],
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200),
    registry=None,
)
GENERATION_LAG_SECONDS = Histogram(
    "topcoins_web_generation_lag_seconds",
    "Seconds from the stream worker writing a generation (Kafka timestamp of its meta) "
    "to this replica serving it.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=None,
)

for _source in ("ranking", "prices"):  # both series exist (empty) from the start
    FRESHNESS_SECONDS.labels(_source)


def observe_served(view: TopListView, now: float, written_at_ms: int | None) -> None:
    """Observe a generation served at unix time ``now``, written at ``written_at_ms``."""
    FRESHNESS_SECONDS.labels("ranking").observe(max(0.0, now - view.ranking_updated_at.timestamp()))
    if view.prices_updated_at is not None:
        age = now - view.prices_updated_at.timestamp()
        FRESHNESS_SECONDS.labels("prices").observe(max(0.0, age))
    if written_at_ms is not None and written_at_ms >= 0:
        GENERATION_LAG_SECONDS.observe(max(0.0, now - written_at_ms / 1000))
