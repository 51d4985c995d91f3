"""The GET / fast path answers exactly like the routed endpoint, and only live requests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.factories import BUILD, SAMPLE_ROWS, Clock, FakeHistory, join_of
from tests.web.factories import asgi_call as call
from topcoins.settings import Settings
from topcoins.web.app import create_app
from topcoins.web.middleware import TopListFastPath
from topcoins.web.replica import StaticReplica
from topcoins.web.view import TopListView


def fast_path_of(app: Any) -> TopListFastPath:
    layer = app.middleware_stack or app.build_middleware_stack()
    app.middleware_stack = layer
    while not isinstance(layer, TopListFastPath):
        layer = layer.app
    return layer


@pytest.mark.parametrize(
    ("method", "query", "headers"),
    [
        ("GET", b"", []),
        ("GET", b"limit=2&format=csv", []),
        ("GET", b"limit=3", [(b"accept", b"text/csv")]),
        ("GET", b"limit=2", [(b"if-none-match", b'W/"nope", *')]),
        ("HEAD", b"limit=1", []),
        ("GET", b"limit=0", []),
        ("GET", b"format=xml", []),
        ("GET", b"bogus=1", []),
        ("GET", b"at=2024-05-01T12:00:10Z", []),
        ("HEAD", b"at=2024-05-01T12:00:10Z&format=csv&limit=2", []),
        ("GET", b"at=2024-05-01T12:00:10", []),
    ],
)
async def test_fast_path_and_routed_endpoint_agree(
    sample_view: TopListView, method: str, query: bytes, headers: list[Any]
) -> None:
    history = FakeHistory(join_of(SAMPLE_ROWS[:3]))
    app = create_app(
        Settings(), StaticReplica(sample_view), build=BUILD, clock=Clock(), history=history
    )
    fast = await call(app, method, "/", query, headers)
    routed = await call(fast_path_of(app).app, method, "/", query, headers)
    assert fast == routed


async def test_fast_path_serves_before_routing(sample_view: TopListView) -> None:
    app = create_app(Settings(), StaticReplica(sample_view), build=BUILD)
    fast_path = fast_path_of(app)

    async def must_not_run(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the routed stack should not see a successful GET /")

    fast_path.app = must_not_run
    sent = await call(app, "GET", "/", b"limit=1", [])
    assert sent[0]["status"] == 200


async def test_errors_and_other_paths_go_down_the_stack(sample_view: TopListView) -> None:
    app = create_app(Settings(), StaticReplica(), build=BUILD)
    sent = await call(app, "GET", "/", b"", [])
    assert sent[0]["status"] == 503
    sent = await call(app, "GET", "/healthz", b"", [])
    assert sent[0]["status"] == 200


@pytest.mark.parametrize(
    "query",
    [
        b"at=2024-05-01T12:00:10Z",
        b"limit=2&at=2024-05-01T12:00:10Z",
        b"format=csv&at=2024-05-01T12:00:10Z",
        b"at=2024-05-01T14:00:10%2B02:00&limit=1&format=json",
    ],
)
async def test_fast_path_leaves_at_to_the_routed_endpoint(
    sample_view: TopListView, query: bytes
) -> None:
    history = FakeHistory(join_of(SAMPLE_ROWS[:3]))
    app = create_app(Settings(), StaticReplica(sample_view), build=BUILD, history=history)
    fast_path = fast_path_of(app)
    routed = fast_path.app
    passed_on: list[bytes] = []

    async def record(scope: Any, receive: Any, send: Any) -> None:
        passed_on.append(scope["query_string"])
        await routed(scope, receive, send)

    fast_path.app = record
    sent = await call(app, "GET", "/", query, [])
    assert sent[0]["status"] == 200
    assert passed_on == [query]
    assert len(history.asked) == 1
    # ... while a live request with the same parser state is still answered before routing
    sent = await call(app, "GET", "/", b"limit=2", [])
    assert sent[0]["status"] == 200
    assert passed_on == [query]
    assert len(history.asked) == 1
