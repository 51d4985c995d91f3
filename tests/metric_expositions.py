"""The ``/metrics`` text of each component, built in-process from the real metric objects.

* web: ``GET /metrics`` of the real app (``create_app``) serving the sample view;
* producers: a ``ProducerMetrics`` per provider plus the process-wide histograms
  (``STAGE_SECONDS``, ``CALL_SECONDS``) that share the producer's default registry;
* worker: ``WorkerMetrics``.

``metric_names`` lists every series name a query may use: a counter ``x`` gives
``x_total``, a histogram ``x`` gives ``x_bucket``, ``x_sum`` and ``x_count``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.web.factories import BUILD, SAMPLE_ROWS, FakeHistory, join_of, view_of
from tests.web.replicas import StaticReplica
from topcoins.producers.metrics import CALL_SECONDS, STAGE_SECONDS, ProducerMetrics
from topcoins.settings import Settings
from topcoins.streams.metrics import WorkerMetrics
from topcoins.web.app import create_app

__all__ = ["expositions", "metric_names"]

_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
}


def _web() -> str:
    app = create_app(
        Settings(),
        StaticReplica(view_of(SAMPLE_ROWS)),
        build=BUILD,
        history=FakeHistory(join_of(SAMPLE_ROWS)),
    )

    async def scrape() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://web") as client:
            return await client.get("/metrics")

    response = asyncio.run(scrape())
    assert response.status_code == 200, response.text
    return response.text


def _producers() -> str:
    registry = CollectorRegistry()  # one producer per process: one provider per registry
    ProducerMetrics("coinmarketcap", registry)
    registry.register(STAGE_SECONDS)
    registry.register(CALL_SECONDS)
    return generate_latest(registry).decode()


def _worker() -> str:
    registry = CollectorRegistry()
    WorkerMetrics(registry)
    return generate_latest(registry).decode()


@functools.cache
def expositions() -> dict[str, str]:
    """Component name -> its ``/metrics`` text."""
    return {"web": _web(), "producer": _producers(), "worker": _worker()}


def metric_names(texts: Iterable[str]) -> set[str]:
    """Every series name the expositions declare (families with no series included)."""
    names: set[str] = set()
    for text in texts:
        for family in text_string_to_metric_families(text):
            names.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
    return names
