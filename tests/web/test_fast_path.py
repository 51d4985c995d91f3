"""The GET / fast path answers exactly like Starlette's routed stack, and only live requests."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from starlette.applications import Starlette

from tests.web.factories import BUILD, NOW, SAMPLE_ROWS, Clock, FakeHistory, join_of, view_of
from tests.web.factories import asgi_call as call
from tests.web.replicas import StaticReplica
from topcoins.history import HistoryReadError, HistoryUnavailable, TimeInFuture
from topcoins.settings import Settings
from topcoins.web.app import create_app
from topcoins.web.errors import HistoryBusy
from topcoins.web.fast_path import TopCoinsApp
from topcoins.web.view import TopListView

AT = b"at=2024-05-01T12:00:10Z"


def routed(app: TopCoinsApp) -> Any:
    """``app`` without its fast path: Starlette's middleware stack and router only."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        await Starlette.__call__(app, scope, receive, send)

    return asgi


def must_not_run(app: TopCoinsApp) -> None:
    """Make Starlette's stack of ``app`` fail any request that reaches it."""

    async def fail(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError(f"the routed stack saw {scope['method']} {scope['query_string']!r}")

    app.middleware_stack = fail


def counts(app: TopCoinsApp) -> dict[tuple[str, int], int]:
    assert app.fast_path is not None
    return dict(app.fast_path.counter.counts)


def make_app(view: TopListView | None, clock: Clock | None = None) -> TopCoinsApp:
    history = FakeHistory(join_of(SAMPLE_ROWS[:3]))
    replica = StaticReplica(view)
    app = create_app(Settings(), replica, build=BUILD, clock=clock or Clock(), history=history)
    assert isinstance(app, TopCoinsApp)
    return app


# (method, query, headers, answered by the fast path)
CASES = [
    ("GET", b"", [], True),
    ("GET", b"limit=5", [], True),
    ("GET", b"limit=2&format=csv", [], True),
    ("GET", b"limit=3&format=CSV", [(b"accept", b"application/json")], True),
    ("GET", b"limit=3", [(b"accept", b"text/csv")], True),
    ("GET", b"limit=3", [(b"accept", b"text/csv;q=0.5, application/json")], True),
    ("GET", b"limit=2", [(b"if-none-match", b'W/"nope"')], True),
    ("GET", b"limit=2", [(b"if-none-match", b'W/"nope", *')], True),
    ("GET", b"format=csv", [(b"if-none-match", b"*")], True),
    ("HEAD", b"limit=1", [], True),
    ("HEAD", b"format=csv", [], True),
    ("HEAD", b"", [(b"if-none-match", b"*")], True),
    ("GET", b"limit=0", [], False),
    ("GET", b"limit=abc", [(b"accept", b"text/csv")], False),
    ("GET", b"format=xml", [], False),
    ("GET", b"bogus=1", [], False),
    ("GET", b"limit=1&limit=2", [], False),
    ("GET", AT, [], True),
    ("GET", AT + b"&limit=2", [(b"accept", b"text/csv")], True),
    ("HEAD", AT + b"&format=csv&limit=2", [], True),
    ("GET", AT, [(b"if-none-match", b"*")], True),
    ("GET", b"at=2024-05-01T12:00:10", [], False),
]


@pytest.mark.parametrize(("method", "query", "headers", "fast"), CASES)
async def test_fast_path_and_routed_stack_send_the_same_bytes(
    sample_view: TopListView, method: str, query: bytes, headers: list[Any], fast: bool
) -> None:
    app = make_app(sample_view)
    expected = await call(routed(app), method, "/", query, headers)
    first = await call(app, method, "/", query, headers)
    again = await call(app, method, "/", query, headers)  # from the fast path's cache
    assert first == again == expected
    if fast:
        must_not_run(app)
        assert await call(app, method, "/", query, headers) == expected


@pytest.mark.parametrize(
    "failure",
    [
        HistoryUnavailable("no list", earliest=NOW - timedelta(days=7)),
        TimeInFuture("later than now"),
        HistoryReadError("the broker is down"),
        HistoryBusy("history_busy", "2 `at` requests are waiting; retry in 2 s", 2),
        RuntimeError("a bug in the reader"),
    ],
)
async def test_an_at_question_that_fails_gets_the_routed_stacks_error(
    sample_view: TopListView, failure: Exception
) -> None:
    app = make_app(sample_view)
    app.fast_path.endpoint.history.reader = FakeHistory(failure)  # type: ignore[union-attr]
    expected = await call(routed(app), "GET", "/", AT)
    must_not_run(app)
    assert await call(app, "GET", "/", AT) == expected
    assert expected[0]["status"] in {400, 404, 503}  # a bug in the reader is a logged 503


async def test_a_bug_past_the_reader_is_a_json_500_from_the_fast_path(
    sample_view: TopListView, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(sample_view)
    history = app.fast_path.endpoint.history  # type: ignore[union-attr]

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(history, "response", broken)
    must_not_run(app)
    start, body = await call(app, "GET", "/", AT)
    assert start["status"] == 500
    assert b'"error":"internal_error"' in body["body"]
    assert counts(app) == {("/", 500): 1}


async def test_a_full_at_queue_turns_at_requests_away_before_parsing_them(
    sample_view: TopListView,
) -> None:
    app = make_app(sample_view)
    admission = app.fast_path.endpoint.history.admission  # type: ignore[union-attr]
    admission.admitted = admission.max_waiting + 1  # one running, the queue full
    must_not_run(app)
    for query in (AT, b"limit=2&at=2024-05-01T12:00:11Z", b"at=not-a-time"):
        start, body = await call(app, "GET", "/", query)
        assert start["status"] == 503
        assert json.loads(body["body"])["error"] == "history_busy"
        assert dict(start["headers"])[b"retry-after"] in {b"1", b"2", b"3"}
    assert (await call(app, "GET", "/", b"limit=2&format=csv"))[0]["status"] == 200  # live
    assert admission.refused == 3
    assert counts(app) == {("/", 503): 3, ("/", 200): 1}


async def test_revalidation_with_the_current_etag_is_the_same_304(
    sample_view: TopListView,
) -> None:
    app = make_app(sample_view)
    for query in (b"limit=4", b"format=csv"):
        start = (await call(app, "GET", "/", query))[0]
        etag = dict(start["headers"])[b"etag"]
        headers = [(b"if-none-match", etag)]
        expected = await call(routed(app), "GET", "/", query, headers)
        assert expected[0]["status"] == 304
        assert await call(app, "GET", "/", query, headers) == expected
        weak = [(b"if-none-match", b'"other", W/' + etag.removeprefix(b"W/"))]
        assert await call(app, "GET", "/", query, weak) == expected


async def test_before_the_first_view_the_routed_stack_answers_503() -> None:
    app = make_app(None)
    expected = await call(routed(app), "GET", "/", b"limit=200")
    assert expected[0]["status"] == 503
    assert await call(app, "GET", "/", b"limit=200") == expected


async def test_answers_follow_the_clock_the_view_and_staleness(
    sample_view: TopListView,
) -> None:
    clock = Clock()
    app = make_app(sample_view, clock)
    before = await call(app, "GET", "/", b"limit=3")
    clock.set(NOW + timedelta(seconds=1))  # a new second: new ages, same ETag
    aged = await call(app, "GET", "/", b"limit=3")
    assert aged == await call(routed(app), "GET", "/", b"limit=3")
    assert aged[1]["body"] != before[1]["body"]
    assert dict(aged[0]["headers"])[b"x-data-age"] != dict(before[0]["headers"])[b"x-data-age"]
    assert dict(aged[0]["headers"])[b"etag"] == dict(before[0]["headers"])[b"etag"]

    clock.set(NOW + timedelta(seconds=400))  # both sources stale: new ETag, no 304
    old_etag = [(b"if-none-match", dict(before[0]["headers"])[b"etag"])]
    stale = await call(app, "GET", "/", b"limit=3", old_etag)
    assert stale == await call(routed(app), "GET", "/", b"limit=3", old_etag)
    assert stale[0]["status"] == 200
    assert dict(stale[0]["headers"])[b"x-data-stale"] == b"true"

    replica = app.fast_path.endpoint.renderer.replica  # type: ignore[union-attr]
    replica.publish(view_of(SAMPLE_ROWS[:2]))  # a new view within the same second
    fresh = await call(app, "GET", "/", b"limit=3")
    assert fresh == await call(routed(app), "GET", "/", b"limit=3")
    assert fresh[1]["body"] != stale[1]["body"]


async def test_requests_are_counted_once_as_on_the_routed_stack(
    sample_view: TopListView,
) -> None:
    fast_app, routed_app = make_app(sample_view), make_app(sample_view)
    etag = dict((await call(routed(routed_app), "GET", "/", b""))[0]["headers"])[b"etag"]
    requests = [
        ("GET", b"", []),
        ("GET", b"format=csv", []),
        ("HEAD", b"limit=2", []),
        ("GET", b"", [(b"if-none-match", etag)]),
        ("GET", b"limit=0", []),
        ("GET", AT, []),
    ]
    for method, query, headers in requests:
        await call(fast_app, method, "/", query, headers)
        await call(routed(routed_app), method, "/", query, headers)
    # the ETag fetch above was one more 200 on the routed app
    expected = {("/", 200): 4, ("/", 304): 1, ("/", 400): 1}
    assert counts(fast_app) == expected
    assert counts(routed_app) == {**expected, ("/", 200): 5}
    durations = fast_app.fast_path.counter.durations["/"]  # type: ignore[union-attr]
    assert sum(durations[0]) == 6
    assert 0 < durations[1][0] < 5


async def test_an_unexpected_error_is_answered_by_the_routed_stack(
    sample_view: TopListView, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(sample_view)
    renderer = app.fast_path.endpoint.renderer  # type: ignore[union-attr]

    def broken() -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(renderer, "current", broken)
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "state": {},
    }
    with pytest.raises(RuntimeError, match="boom"):  # re-raised to the server after the 500
        await app(scope, receive, send)
    assert sent[0]["status"] == 500
    assert b'"error":"internal_error"' in sent[1]["body"]
    assert counts(app) == {("/", 500): 1}


async def test_other_paths_and_methods_go_to_starlette(sample_view: TopListView) -> None:
    app = make_app(sample_view)
    assert (await call(app, "GET", "/healthz"))[0]["status"] == 200
    assert (await call(app, "POST", "/"))[0]["status"] == 405
    must_not_run(app)
    for method, path in (("GET", "/healthz"), ("POST", "/"), ("GET", "//")):
        with pytest.raises(AssertionError, match="routed stack saw"):
            await call(app, method, path)


async def test_the_cache_stays_bounded(sample_view: TopListView) -> None:
    app = make_app(sample_view)
    assert app.fast_path is not None
    for i in range(1500):
        accept = b"application/json;v=%d" % i
        sent = await call(app, "GET", "/", b"limit=1", [(b"accept", accept)])
        assert sent[0]["status"] == 200
    assert 0 < len(app.fast_path._answers) <= 1024


async def test_one_query_is_negotiated_per_accept(sample_view: TopListView) -> None:
    app = make_app(sample_view)
    for accept in (b"text/csv", b"application/json", b"text/csv", b"*/*;q=0.1, text/csv"):
        headers = [(b"accept", accept)]
        sent = await call(app, "GET", "/", b"limit=2", headers)
        assert sent == await call(routed(app), "GET", "/", b"limit=2", headers)
        want = b"text/csv" if b"csv" in accept else b"application/json"
        assert dict(sent[0]["headers"])[b"content-type"].startswith(want)
