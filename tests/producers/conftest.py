"""Helpers for producer tests: an ``httpx.AsyncClient`` whose transport is a handler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from topcoins.schemas.codec import encode

API_KEY = "sk-test-3f9c2d1e8a7b"

Handler = Callable[[httpx.Request], httpx.Response]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    """A response carrying ``body`` as JSON."""
    return httpx.Response(status, json=body, headers=headers)


class Sink:
    """A fake publish (or status send): raises its ``failures`` first, then keeps each record
    in ``sent`` and answers its encoded size."""

    def __init__(self, *failures: Exception) -> None:
        self.sent: list[Any] = []
        self.failures = list(failures)

    async def __call__(self, record: Any) -> int:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(record)
        return len(encode(record))


class Recorder:
    """A MockTransport handler that answers from a list and records every request."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def params(self, index: int = 0) -> dict[str, str]:
        """The query parameters of request ``index``."""
        return dict(self.requests[index].url.params)


@pytest.fixture
async def make_http() -> AsyncIterator[Callable[[Handler, str], httpx.AsyncClient]]:
    """``make_http(handler, base_url)`` builds a client served by ``handler``; closed after."""
    clients: list[httpx.AsyncClient] = []

    def make(handler: Handler, base_url: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=base_url, transport=httpx.MockTransport(handler))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


class FakeTime:
    """A monotonic clock and a ``Sleep`` that advances it instead of sleeping.

    ``stop_after=n`` sets ``stop`` on the n-th sleep (which then reports it was stopped).
    """

    def __init__(self, stop: asyncio.Event | None = None, stop_after: int | None = None) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.stop = stop
        self.stop_after = stop_after

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float, stop: asyncio.Event | None) -> bool:
        self.sleeps.append(seconds)
        if self.stop is not None and len(self.sleeps) == self.stop_after:
            self.stop.set()
            return True
        self.now += seconds
        return False
