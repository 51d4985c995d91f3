"""Readiness follows the App's rebalance signals."""

from __future__ import annotations

from faust.types import TP
from prometheus_client import CollectorRegistry

from topcoins.settings import Settings
from topcoins.streams.app import build_worker


async def test_ready_after_inputs_are_assigned_and_recovery_ends():
    worker = build_worker(Settings(topic_prefix="ready"), registry=CollectorRegistry())
    app, readiness = worker.app, worker.readiness
    inputs = {TP("ready.ranks.v1", 0), TP("ready.prices.v1", 0)}
    assert not readiness.is_ready()

    await app.on_partitions_assigned.send(inputs)
    assert not readiness.is_ready()  # tables still recovering
    await app.on_rebalance_complete.send()
    assert readiness.is_ready()

    await app.on_partitions_revoked.send(inputs)
    assert not readiness.is_ready()


async def test_not_ready_without_every_input_topic():
    worker = build_worker(Settings(topic_prefix="ready"), registry=CollectorRegistry())

    await worker.app.on_partitions_assigned.send({TP("ready.ranks.v1", 0)})
    await worker.app.on_rebalance_complete.send()

    assert not worker.readiness.is_ready()
