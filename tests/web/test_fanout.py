"""StreamHub: one encoding per generation and limit, bounded queues, heartbeats, shutdown."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tests.web.factories import SAMPLE_ROWS, Clock, view_of
from tests.web.replicas import StaticReplica
from topcoins.settings import Settings
from topcoins.web.errors import TooManyStreams
from topcoins.web.fanout import CloseReason, StreamClosed, StreamHub, Subscription
from topcoins.web.freshness import FreshnessClock, StalenessPolicy
from topcoins.web.params import Format
from topcoins.web.routes import Renderer
from topcoins.web.sse import HEARTBEAT, event_id
from topcoins.web.view import TopListView


def next_generation(view: TopListView, n: int = 2) -> TopListView:
    """The same list with a new price on its first asset and a new snapshot pair."""
    first = dataclasses.replace(view.entries[0], price_usd=60000.0 + n)
    return dataclasses.replace(
        view,
        generation=view.generation + 1,
        entries=(first, *view.entries[1:]),
        ranking_snapshot_id=f"rank-{n:04}",
        pricing_snapshot_id=f"price-{n:04}",
    )


def hub_of(
    replica: StaticReplica, clock: Clock | None = None, settings: Settings | None = None, **kw
) -> StreamHub:
    policy = StalenessPolicy(settings or Settings())
    renderer = Renderer(replica, FreshnessClock(policy, clock or Clock()))
    return StreamHub(replica, renderer, kw.pop("max_streams", 10), **kw)


def pending(subscription: Subscription) -> bytes:
    """What the subscription would send now, without waiting."""
    return b"".join(subscription._pending)


async def test_a_new_stream_starts_with_the_current_list_unless_it_resumes_from_it() -> None:
    view = view_of(SAMPLE_ROWS)
    replica = StaticReplica(view)
    hub = hub_of(replica)
    fresh = hub.subscribe(3)
    body = hub.renderer.response(Format.JSON, 3).body
    eid = event_id(view, hub.renderer.freshness())
    assert pending(fresh) == b"id: " + eid.encode() + b"\ndata: " + body + b"\n\n"
    resumed = hub.subscribe(3, last_event_id=eid)
    assert pending(resumed) == b""
    other = hub.subscribe(3, last_event_id="an-older-generation")
    assert pending(other) == pending(fresh)


async def test_each_generation_is_encoded_once_per_limit_and_shared_by_every_stream() -> None:
    replica = StaticReplica(view_of(SAMPLE_ROWS))
    hub = hub_of(replica, max_streams=100)
    streams = [hub.subscribe(2 if i % 2 else 5) for i in range(50)]
    for stream in streams:
        await stream.take()
    replica.publish(next_generation(replica.view))
    assert hub.broadcast() == 50
    frames = [stream._pending[0] for stream in streams]
    assert len({id(frame) for frame in frames}) == 2  # one bytes object per limit
    assert b"60002.0" in frames[0] and frames[0].startswith(b"id: ")
    assert hub.broadcast() == 0  # nothing new: nothing offered


async def test_a_stream_that_has_the_current_event_is_not_sent_it_twice() -> None:
    replica = StaticReplica(view_of(SAMPLE_ROWS))
    hub = hub_of(replica)
    early = hub.subscribe(5)
    await early.take()
    replica.publish(next_generation(replica.view))
    late = hub.subscribe(5)  # connected between the publish and the broadcast
    await late.take()
    assert hub.broadcast() == 1
    assert pending(late) == b""


async def test_a_source_turning_stale_is_a_new_event_without_a_new_generation() -> None:
    clock = Clock()
    replica = StaticReplica(view_of(SAMPLE_ROWS))
    hub = hub_of(replica, clock, Settings(stale_after_seconds=100))
    stream = hub.subscribe(5)
    first = await stream.take()
    assert b'"stale":false' in first
    clock.advance(30)  # the prices are now 103 s old
    assert hub.broadcast() == 1
    event = await stream.take()
    assert b"-stale-prices\n" in event and b'"stale":true' in event
    assert b'"stale_sources":["prices"]' in event


async def test_a_full_queue_closes_only_that_stream() -> None:
    replica = StaticReplica(view_of(SAMPLE_ROWS))
    hub = hub_of(replica, capacity=2)
    slow, fast = hub.subscribe(5), hub.subscribe(5)
    for n in range(2, 5):
        await fast.take()
        replica.publish(next_generation(replica.view, n))
        hub.broadcast()
    assert slow.reason is CloseReason.TOO_SLOW and slow.closed.done()
    assert fast.reason is None and b"60004.0" in await fast.take()
    with pytest.raises(StreamClosed):
        await slow.take()
    hub.unsubscribe(slow)
    hub.unsubscribe(fast)
    assert hub.closed_total == {
        CloseReason.TOO_SLOW: 1,
        CloseReason.CLIENT_GONE: 1,
        CloseReason.SHUTDOWN: 0,
    }
    assert hub.open_streams == 0


async def test_past_the_maximum_a_stream_is_refused() -> None:
    hub = hub_of(StaticReplica(view_of(SAMPLE_ROWS)), max_streams=2)
    first, _ = hub.subscribe(1), hub.subscribe(1)
    with pytest.raises(TooManyStreams) as refused:
        hub.subscribe(1)
    assert refused.value.status_code == 503 and refused.value.headers["Retry-After"] == "5"
    hub.unsubscribe(first)
    hub.subscribe(1)


async def test_the_feeding_task_sends_new_generations_and_heartbeats() -> None:
    replica = StaticReplica()  # no list yet: the stream opens empty
    async with hub_of(replica, heartbeat_seconds=0.05, tick_seconds=0.02) as hub:
        stream = hub.subscribe(5)
        assert await asyncio.wait_for(stream.take(), 1) == HEARTBEAT
        replica.publish(view_of(SAMPLE_ROWS))
        event = await asyncio.wait_for(stream.take(), 1)
        while event == HEARTBEAT:
            event = await asyncio.wait_for(stream.take(), 1)
        assert event.startswith(b"id: ") and b'"symbol":"BTC"' in event


async def test_closing_ends_every_stream_and_refuses_new_ones() -> None:
    hub = hub_of(StaticReplica(view_of(SAMPLE_ROWS)))
    async with hub:
        stream = hub.subscribe(5)
        await stream.take()
        hub.close()
        with pytest.raises(StreamClosed) as closed:
            await stream.take()
        assert closed.value.reason is CloseReason.SHUTDOWN
        assert hub.subscribe(5).reason is CloseReason.SHUTDOWN


async def test_open_and_closed_streams_are_metrics() -> None:
    hub = hub_of(StaticReplica(view_of(SAMPLE_ROWS)))
    hub.unsubscribe(hub.subscribe(5))
    hub.subscribe(5)
    samples = {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in hub.collect()
        for sample in family.samples
    }
    assert samples[("topcoins_web_streams_open", ())] == 1
    assert samples[("topcoins_web_streams_closed_total", ("client_gone",))] == 1
    assert samples[("topcoins_web_streams_closed_total", ("too_slow",))] == 0
