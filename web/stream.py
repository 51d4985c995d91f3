"""``GET /stream?limit=N``: the live list as Server-Sent Events.

On connect, one event with the current list (the ``GET /`` JSON body for ``limit``,
``meta`` with ages and ``stale`` included); then one event each time the event id changes
(a new generation, or a source turning stale or fresh again: ``topcoins.web.sse``), and a
heartbeat comment every 15 s. A client that reconnects with ``Last-Event-ID`` equal to the
current id is not sent the unchanged list again. Before the first list has arrived the
stream opens with no event and sends the first list when it comes.

``limit`` follows the rules of ``GET /`` (``topcoins.web.params``); any other parameter
is a 400. Past ``WEB_STREAM_MAX`` open streams the answer is 503 ``too_many_streams``
with ``Retry-After``. The stream ends when the client goes away, when it reads too slowly
for its bounded queue (``topcoins.web.fanout``), and at shutdown; in the last two cases
the response is ended cleanly if the client takes the final chunk within a second, else
the server drops the connection.

Headers: ``Content-Type: text/event-stream``, ``Cache-Control: no-cache, no-transform``
and ``X-Accel-Buffering: no`` so that proxies (nginx, ingress controllers) pass each event
on at once instead of buffering the response.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import Receive, Scope, Send

from topcoins.web.fanout import CloseReason, StreamClosed, StreamHub, Subscription
from topcoins.web.params import QueryParser

__all__ = ["STREAM_HEADERS", "StreamEndpoint"]

STREAM_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]
_FINISH_SECONDS = 1.0


class StreamEndpoint:
    """The ASGI app of ``GET /stream`` (see the module docstring)."""

    def __init__(
        self, hub: StreamHub, parser: QueryParser, *, finish_seconds: float = _FINISH_SECONDS
    ) -> None:
        self.hub = hub
        self.parser = parser
        self.finish_seconds = finish_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = self.parser.parse(scope["query_string"])  # a bad query: 400 before anything
        if scope["method"] == "HEAD":
            await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
            await send({"type": "http.response.body", "body": b""})
            return
        subscription = self.hub.subscribe(query.limit, _last_event_id(scope))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
            reason = await _serve(subscription, receive, send)
        finally:
            self.hub.unsubscribe(subscription)
        if reason is not CloseReason.CLIENT_GONE:
            # Ends the chunked body, so the client sees the stream end (and reconnects).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.finish_seconds):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _serve(subscription: Subscription, receive: Receive, send: Send) -> CloseReason:
    """Send ``subscription``'s chunks until it closes or the client goes away."""
    pump = asyncio.create_task(_pump(subscription, send))
    watcher = asyncio.create_task(_until_disconnect(receive))
    try:
        await asyncio.wait(
            (pump, watcher, subscription.closed), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        pump.cancel()
        watcher.cancel()
        await asyncio.wait((pump, watcher))
    if watcher.done() and not watcher.cancelled():
        return CloseReason.CLIENT_GONE
    if subscription.reason is not None:
        return subscription.reason
    error = None if pump.cancelled() else pump.exception()
    if error is not None and not isinstance(error, StreamClosed):
        raise error
    return CloseReason.CLIENT_GONE


async def _pump(subscription: Subscription, send: Send) -> None:
    while True:
        chunk = await subscription.take()
        await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _last_event_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"last-event-id":
            return value.decode("latin-1").strip()
    return None
