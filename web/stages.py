"""``STAGE_SECONDS``: time the web service spends per stage of a new generation.

``apply`` is observed per fetched batch of top-topic messages (decode and fold them, build
the view), ``render`` per encoded ``(format, limit)`` body of a view (done on the first
request that needs it). It is process-wide, like the process collectors, and ``WebMetrics``
adds it to its registry as ``topcoins_web_stage_seconds{stage}``.
"""

from __future__ import annotations

from prometheus_client import Histogram

__all__ = ["STAGE_SECONDS"]

STAGE_SECONDS = Histogram(
    "topcoins_web_stage_seconds",
    "Time per stage: apply (one fetched batch of top-topic messages), render (one body).",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=None,
)
