"""GET /stream over raw ASGI: events, resume, heartbeats, slow clients, limits, shutdown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette

from tests.web.factories import (
    BUILD,
    SAMPLE_ROWS,
    Clock,
    FakeHistory,
    asgi_call,
    http_scope,
    join_of,
    view_of,
)
from tests.web.replicas import StaticReplica
from tests.web.test_fanout import hub_of, next_generation
from topcoins.settings import Settings
from topcoins.web.app import create_app
from topcoins.web.fanout import CloseReason, StreamHub
from topcoins.web.params import STREAM_PARAMETERS, QueryParser
from topcoins.web.sse import HEARTBEAT
from topcoins.web.stream import StreamEndpoint

WAIT = 2.0


class StreamCall:
    """One ``GET /stream`` driven over raw ASGI: what the app sends, and a way to hang up.
    ``reads=False`` plays a client that never reads: every body send blocks."""

    def __init__(
        self,
        app: Callable[..., Any],
        query: bytes = b"",
        headers: list[Any] | None = None,
        *,
        reads: bool = True,
    ) -> None:
        self.sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reads = reads
        self._requested = False
        self._gone = asyncio.Event()
        scope = http_scope("GET", "/stream", query, headers)
        self.task = asyncio.create_task(app(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        if not self.reads and message.get("body"):
            await asyncio.Event().wait()  # the client's socket never drains
        await self.sent.put(message)

    async def start(self) -> dict[str, Any]:
        message = await asyncio.wait_for(self.sent.get(), WAIT)
        assert message["type"] == "http.response.start"
        return message

    async def chunk(self) -> bytes:
        message = await asyncio.wait_for(self.sent.get(), WAIT)
        assert message["type"] == "http.response.body" and message.get("more_body"), message
        return message["body"]

    async def event(self) -> bytes:
        """The next chunk that is not a heartbeat."""
        chunk = await self.chunk()
        while chunk == HEARTBEAT:
            chunk = await self.chunk()
        return chunk

    def hang_up(self) -> None:
        self._gone.set()


def data_of(event: bytes) -> dict[str, Any]:
    lines = event.decode().split("\n")
    assert lines[0].startswith("id: ") and lines[1].startswith("data: ") and lines[2:] == ["", ""]
    return json.loads(lines[1].removeprefix("data: "))


def id_of(event: bytes) -> str:
    return event.decode().split("\n", 1)[0].removeprefix("id: ")


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[Starlette]:
    async with app.router.lifespan_context(app):
        yield app


def real_app(replica: StaticReplica, settings: Settings | None = None) -> Starlette:
    history = FakeHistory(join_of(SAMPLE_ROWS))
    return create_app(settings or Settings(), replica, build=BUILD, clock=Clock(), history=history)


@asynccontextmanager
async def endpoint_of(replica: StaticReplica, **hub_args: Any) -> AsyncIterator[StreamEndpoint]:
    async with hub_of(replica, **hub_args) as hub:
        yield StreamEndpoint(hub, QueryParser(200, STREAM_PARAMETERS), finish_seconds=0.1)


async def test_the_first_event_is_the_body_of_get_and_each_generation_follows() -> None:
    replica = StaticReplica(view_of(SAMPLE_ROWS))
    async with running(real_app(replica)) as app:
        call = StreamCall(app, b"limit=3")
        start = await call.start()
        assert start["status"] == 200
        headers = dict(start["headers"])
        assert headers[b"content-type"] == b"text/event-stream"
        assert headers[b"cache-control"] == b"no-cache, no-transform"
        assert headers[b"x-accel-buffering"] == b"no"
        first = await call.event()
        get = await asgi_call(app, "GET", "/", b"limit=3")
        assert first.split(b"\n")[1] == b"data: " + get[1]["body"]
        replica.publish(next_generation(replica.view))
        second = await call.event()
        assert data_of(second)["data"][0]["price_usd"] == 60002.0
        assert id_of(second) != id_of(first)
        call.hang_up()
        await asyncio.wait_for(call.task, WAIT)
        assert app.state.stream_hub.open_streams == 0


async def test_resuming_with_the_current_id_does_not_resend_the_list() -> None:
    replica = StaticReplica(view_of(SAMPLE_ROWS))
    async with endpoint_of(replica, heartbeat_seconds=0.05) as endpoint:
        first = StreamCall(endpoint, b"limit=2")
        await first.start()
        eid = id_of(await first.event())
        first.hang_up()
        resumed = StreamCall(endpoint, b"limit=2", [(b"last-event-id", eid.encode())])
        await resumed.start()
        assert await resumed.chunk() == HEARTBEAT  # no event: the client has this list
        replica.publish(next_generation(replica.view))
        assert data_of(await resumed.event())["data"][0]["price_usd"] == 60002.0
        resumed.hang_up()


async def test_heartbeats_flow_while_the_list_does_not_change() -> None:
    replica = StaticReplica(view_of(SAMPLE_ROWS))
    async with endpoint_of(replica, heartbeat_seconds=0.05) as endpoint:
        call = StreamCall(endpoint, b"limit=1")
        await call.start()
        assert data_of(await call.chunk())["meta"]["limit"] == 1
        assert [await call.chunk() for _ in range(3)] == [HEARTBEAT] * 3
        call.hang_up()


async def test_a_client_that_does_not_read_is_disconnected_and_the_others_are_not_slowed() -> None:
    replica = StaticReplica(view_of(SAMPLE_ROWS))
    async with endpoint_of(replica, capacity=2, tick_seconds=0.01) as endpoint:
        stuck = StreamCall(endpoint, b"limit=5", reads=False)
        reader = StreamCall(endpoint, b"limit=5")
        await stuck.start()
        await reader.start()
        await reader.event()
        for n in range(2, 6):
            replica.publish(next_generation(replica.view, n))
            assert data_of(await reader.event())["data"][0]["price_usd"] == 60000.0 + n
        await asyncio.wait_for(stuck.task, WAIT)  # its response ended
        assert endpoint.hub.closed_total[CloseReason.TOO_SLOW] == 1
        assert endpoint.hub.open_streams == 1
        reader.hang_up()


async def test_past_web_stream_max_the_answer_is_503_with_retry_after() -> None:
    replica = StaticReplica(view_of(SAMPLE_ROWS))
    async with running(real_app(replica, Settings(web_stream_max=1))) as app:
        open_one = StreamCall(app)
        await open_one.start()
        refused = await asgi_call(app, "GET", "/stream")
        assert refused[0]["status"] == 503
        assert (b"retry-after", b"5") in refused[0]["headers"]
        assert json.loads(refused[1]["body"])["error"] == "too_many_streams"
        open_one.hang_up()
        await asyncio.wait_for(open_one.task, WAIT)
        again = StreamCall(app)
        assert (await again.start())["status"] == 200
        again.hang_up()


async def test_bad_parameters_are_a_400_before_any_stream_opens() -> None:
    async with running(real_app(StaticReplica(view_of(SAMPLE_ROWS)))) as app:
        for query, code in [(b"format=csv", "unknown_parameter"), (b"limit=0", "invalid_limit")]:
            answer = await asgi_call(app, "GET", "/stream", query)
            assert answer[0]["status"] == 400
            assert json.loads(answer[1]["body"])["error"] == code
        assert app.state.stream_hub.open_streams == 0


async def test_closing_the_hub_ends_open_streams_cleanly() -> None:
    replica = StaticReplica(view_of(SAMPLE_ROWS))
    async with endpoint_of(replica) as endpoint:
        call = StreamCall(endpoint)
        await call.start()
        await call.event()
        endpoint.hub.close()
        await asyncio.wait_for(call.task, WAIT)
        last = call.sent.get_nowait()
        assert last == {"type": "http.response.body", "body": b"", "more_body": False}
        assert endpoint.hub.closed_total[CloseReason.SHUTDOWN] == 1


async def test_without_a_list_yet_the_stream_opens_and_waits_for_the_first() -> None:
    replica = StaticReplica()
    async with endpoint_of(replica, tick_seconds=0.01) as endpoint:
        call = StreamCall(endpoint)
        assert (await call.start())["status"] == 200
        replica.publish(view_of(SAMPLE_ROWS))
        assert data_of(await call.event())["meta"]["total_ranked"] == 5
        call.hang_up()


def test_the_hub_is_a_stream_hub() -> None:
    assert isinstance(real_app(StaticReplica()).state.stream_hub, StreamHub)
