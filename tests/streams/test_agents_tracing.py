"""The worker's spans: a join linked to the polls that sent its pair, around the write,
whose trace context every top-topic message of the generation carries."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from tests.streams.worker_context import MKTCAP_2020, PRICES_2020, VOLUME_2020, TopTopicRecorder
from topcoins.schemas import codec
from topcoins.schemas.topics import META_KEY
from topcoins.settings import Settings
from topcoins.streams.app import build_worker
from topcoins.streams.updater import Outcome
from topcoins.tracing import inject_headers, span_context_from_headers, start_span


@pytest.fixture
def worker():
    return build_worker(Settings(topic_prefix="unit"), registry=CollectorRegistry())


@pytest.fixture
def top(worker, monkeypatch):
    recorder = TopTopicRecorder()
    monkeypatch.setattr(worker.updater.writer, "top", recorder)
    return recorder


def polled(name: str):
    """A finished producer span and the headers its publish carried."""
    with start_span(name, kind="producer") as span:
        headers = inject_headers([])
    return span.get_span_context(), headers


async def put(agent, record, key: bytes, headers) -> Outcome:
    event = await agent.put(codec.encode(record), key=key, headers=headers)
    return agent.results[event.message.offset]


def linked(span) -> set[int]:
    return {link.context.span_id for link in span.links}


async def test_the_join_links_both_polls_and_the_generation_carries_the_write(spans, worker, top):
    ranking_poll, ranking_headers = polled("publish ranks")
    pricing_poll, pricing_headers = polled("publish prices")
    async with (
        worker.agents.ranks.test_context() as ranks,
        worker.agents.prices.test_context() as prices,
    ):
        assert await put(prices, PRICES_2020, b"coinmarketcap", pricing_headers) is Outcome.STORED
        assert await put(ranks, VOLUME_2020, b"cryptocompare", ranking_headers) is Outcome.PUBLISHED

        (join,) = [s for s in spans.get_finished_spans() if s.name == "join"]
        (write,) = [s for s in spans.get_finished_spans() if s.name == "write top topic"]
        # The prices came in an earlier message; the join still links to their poll.
        assert linked(join) == {ranking_poll.span_id, pricing_poll.span_id}
        assert write.parent.span_id == join.context.span_id
        meta_headers = [h for (k, _), h in zip(top.sent, top.headers, strict=True) if k == META_KEY]
        carried = span_context_from_headers(meta_headers[-1])
        assert (carried.trace_id, carried.span_id) == (
            write.context.trace_id,
            write.context.span_id,
        )

        # A new ranking links to its own poll and to the prices still in force.
        new_ranking_poll, new_headers = polled("publish ranks")
        spans.clear()
        assert await put(ranks, MKTCAP_2020, b"cryptocompare", new_headers) is Outcome.PUBLISHED
        (join,) = [s for s in spans.get_finished_spans() if s.name == "join"]
        assert linked(join) == {new_ranking_poll.span_id, pricing_poll.span_id}


async def test_a_join_of_untraced_snapshots_has_no_links(spans, worker, top):
    async with worker.agents.ranks.test_context() as ranks:
        assert await put(ranks, VOLUME_2020, b"cryptocompare", None) is Outcome.PUBLISHED
    (join,) = [s for s in spans.get_finished_spans() if s.name == "join"]
    assert join.links == ()
