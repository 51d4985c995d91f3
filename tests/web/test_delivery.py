"""Freshness and generation lag of each served generation (``topcoins.web.delivery``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram

from tests.web.factories import SAMPLE_ROWS, view_of
from tests.web.fake_kafka import TOPICS, TP, Record, generation, records
from topcoins.settings import Settings
from topcoins.web.delivery import FRESHNESS_SECONDS, GENERATION_LAG_SECONDS, observe_served
from topcoins.web.replica import TopListReplica


@dataclass
class TimedRecord(Record):
    timestamp: int = -1  # ConsumerRecord.timestamp: ms since the epoch


def counts(histogram: Histogram) -> dict[tuple[str, ...], tuple[float, float]]:
    """(count, sum) per label set."""
    registry = CollectorRegistry()
    registry.register(histogram)
    found: dict[tuple[str, ...], list[float]] = {}
    for family in registry.collect():
        for sample in family.samples:
            key = tuple(v for k, v in sorted(sample.labels.items()) if k != "le")
            if sample.name.endswith("_count"):
                found.setdefault(key, [0, 0])[0] = sample.value
            elif sample.name.endswith("_sum"):
                found.setdefault(key, [0, 0])[1] = sample.value
    return {key: (c, s) for key, (c, s) in found.items()}


def test_observe_served_measures_from_the_oldest_fetch_and_the_meta_write() -> None:
    view = view_of(SAMPLE_ROWS)
    now = view.ranking_updated_at.timestamp() + 90
    before_f, before_l = counts(FRESHNESS_SECONDS), counts(GENERATION_LAG_SECONDS)

    observe_served(view, now, written_at_ms=int((now - 0.25) * 1000))

    after_f, after_l = counts(FRESHNESS_SECONDS), counts(GENERATION_LAG_SECONDS)
    assert after_f[("ranking",)][0] == before_f[("ranking",)][0] + 1
    assert after_f[("ranking",)][1] - before_f[("ranking",)][1] == 90
    prices_age = now - view.prices_updated_at.timestamp()
    assert after_f[("prices",)][1] - before_f[("prices",)][1] == prices_age
    assert after_l[()][0] == before_l[()][0] + 1
    assert abs(after_l[()][1] - before_l[()][1] - 0.25) < 0.002


def test_the_replica_observes_each_generation_it_serves_once_caught_up() -> None:
    replica = TopListReplica(Settings(), TOPICS)
    messages = generation(SAMPLE_ROWS[:2])
    written = int(time.time() * 1000) - 2000

    def batch(start: int) -> list[Record]:
        return [
            TimedRecord(r.topic, r.partition, r.offset, r.key, r.value, written)
            for r in records(messages, start=start)
        ]

    before = counts(GENERATION_LAG_SECONDS)[()][0]
    replica.apply_batches({TP: batch(0)})  # the start-up backlog: not observed
    assert counts(GENERATION_LAG_SECONDS)[()][0] == before

    replica._top.caught_up = True
    replica.apply_batches({TP: batch(len(messages))})
    count, _ = counts(GENERATION_LAG_SECONDS)[()]
    assert count == before + 1
    assert replica.stats.generations == 2
