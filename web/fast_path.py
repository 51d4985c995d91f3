"""The ``GET /`` fast path: the web app answers a top-list request before Starlette.

``TopCoinsApp`` is the Starlette app of ``create_app`` with one change: a plain
``GET /`` or ``HEAD /`` with valid parameters is answered by its ``TopListFastPath`` before
Starlette's own ``__call__`` (so before ``ServerErrorMiddleware``, the request-metrics
middleware, the exception middleware and routing). Everything else goes through Starlette
unchanged.

A query with ``at`` goes to the routed endpoint's ``prepare_historical`` from here too:
under a flood of ``at`` requests, each one (most of them refused with 503
``history_busy``) costs the event loop a fraction of what the middleware stack costs, so
the live requests between them wait less. Its ``RequestError`` is answered with the same
JSON error as the exception handlers give, and a bug with their 500 ``internal_error``.

``TopListFastPath`` keeps, per ``Freshness`` object (one per wall-clock second, view and
producer statuses: ``freshness.FreshnessClock``), the finished ASGI messages of each
``(query string, Accept)`` seen, built from the routed ``TopListEndpoint``'s own parser,
negotiation and ``Renderer``. So a repeated request costs a header scan, a clock read and
a dict lookup. The cached messages are sent as they are, so nothing between the server
and the app may change a message it is given (uvicorn does not). Whatever the fast path
cannot answer (bad parameters, no data yet, an unexpected error in a live answer) is
passed to Starlette untouched, nothing having been sent: there the routed endpoint raises the same
error and the exception handlers answer it. Both paths send the same bytes and count the
request once in ``topcoins_web_requests`` (route ``/``) and its duration histogram
(tests/web/test_fast_path.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from topcoins.web.errors import RequestError, unexpected_error_response
from topcoins.web.freshness import Freshness
from topcoins.web.metrics import RequestCounter
from topcoins.web.params import TopListQuery, negotiate
from topcoins.web.responses import PreparedResponse, error_response
from topcoins.web.routes import TopListEndpoint, is_not_modified, negotiation_headers

__all__ = ["TopCoinsApp", "TopListFastPath"]

_GET_OR_HEAD = frozenset({"GET", "HEAD"})
# Distinct (query string, Accept) pairs kept per second; more and the cache starts over.
_MAX_ENTRIES = 1024
_BODY = "http.response.body"
_EMPTY_BODY: Message = {"type": _BODY, "body": b""}


@dataclass(frozen=True, slots=True)
class _Answer:
    """The ready ASGI messages of one ``PreparedResponse``."""

    etag: bytes
    start: Message
    body: Message
    not_modified: Message

    @classmethod
    def of(cls, prepared: PreparedResponse) -> _Answer:
        start = {"type": "http.response.start", "status": prepared.status}
        return cls(
            prepared.etag,
            {**start, "headers": prepared.headers},
            {"type": _BODY, "body": prepared.body},
            {**start, "status": 304, "headers": prepared.not_modified_headers},
        )


class TopListFastPath:
    """Live ``GET /`` answers of ``endpoint``, cached per ``Freshness`` as ASGI messages."""

    def __init__(self, endpoint: TopListEndpoint, counter: RequestCounter) -> None:
        self.endpoint = endpoint
        self.counter = counter
        self._freshness: Freshness | None = None
        self._answers: dict[tuple[bytes, bytes | None], _Answer] = {}
        self._refusals: dict[tuple[object, ...], tuple[Message, Message]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer ``scope`` (a ``GET``/``HEAD`` of ``/``) and count it; False when it is
        for Starlette (nothing sent, nothing counted)."""
        started = time.perf_counter()
        query_string = scope["query_string"]
        if _asks_at(query_string):
            refused = self.endpoint.history.admission.refusal()
            if refused is not None:  # turned away before anything else is done
                await self._refuse(refused, send)
                self.counter.inc("/", refused.status_code, time.perf_counter() - started)
                return True
        accept, if_none_match = negotiation_headers(scope)
        try:
            answer = self._answer(query_string, accept)
        except Exception:  # a RequestError or a bug: the routed stack answers it
            return False
        if answer is None:
            return False
        if isinstance(answer, TopListQuery):
            status = await self._historical(scope, receive, send, answer)
        elif is_not_modified(if_none_match, answer.etag):
            await send(answer.not_modified)
            await send(_EMPTY_BODY)
            status = 304
        else:
            await send(answer.start)
            await send(_EMPTY_BODY if scope["method"] == "HEAD" else answer.body)
            status = answer.start["status"]
        self.counter.inc("/", status, time.perf_counter() - started)
        return True

    async def _historical(
        self, scope: Scope, receive: Receive, send: Send, query: TopListQuery
    ) -> int:
        """Answer a query with ``at`` as the routed endpoint and its exception handlers
        would; the status sent."""
        try:
            prepared, not_modified = await self.endpoint.prepare_historical(scope, query)
        except RequestError as exc:
            error = error_response(exc.status_code, exc.code, exc.detail, exc.headers, exc.extra)
        except Exception as exc:  # a bug: logged, answered as the routed stack would
            error = unexpected_error_response(scope["method"], scope["path"], exc)
        else:
            await prepared.send(send, head=scope["method"] == "HEAD", not_modified=not_modified)
            return 304 if not_modified else prepared.status
        await error(scope, receive, send)
        return error.status_code

    async def _refuse(self, refused: RequestError, send: Send) -> None:
        """Send ``refused`` as the exception handlers would, its messages built once."""
        key = (refused.code, refused.detail, tuple(refused.headers.items()))
        messages = self._refusals.get(key)
        if messages is None:
            response = error_response(
                refused.status_code, refused.code, refused.detail, refused.headers, refused.extra
            )
            start = {"type": "http.response.start", "status": response.status_code}
            messages = (
                {**start, "headers": response.raw_headers},
                {"type": _BODY, "body": response.body},
            )
            if len(self._refusals) >= _MAX_ENTRIES:
                self._refusals = {}
            self._refusals[key] = messages
        await send(messages[0])
        await send(messages[1])

    def _answer(self, query_string: bytes, accept: bytes | None) -> _Answer | TopListQuery | None:
        """The cached live answer, or the parsed query when it has ``at``; raises
        ``RequestError``."""
        renderer = self.endpoint.renderer
        replica = renderer.replica
        freshness = renderer.clock.current(replica.view, replica.statuses)
        if freshness is not self._freshness:
            self._freshness = freshness
            self._answers = {}
        key = (query_string, accept)
        answer = self._answers.get(key)
        if answer is None:
            query = self.endpoint.parser.parse(query_string)
            if query.at is not None:
                return query
            rendered = renderer.current()  # raises NoDataYet before the first view
            fmt = query.format or negotiate(accept)
            answer = _Answer.of(rendered.response(fmt, query.limit, freshness))
            if len(self._answers) >= _MAX_ENTRIES:
                self._answers = {}
            self._answers[key] = answer
        return answer


def _asks_at(query_string: bytes) -> bool:
    """Whether the raw query string has an ``at`` parameter (valid or not)."""
    return query_string.startswith(b"at=") or b"&at=" in query_string


class TopCoinsApp(Starlette):
    """Starlette, with ``fast_path`` answering ``GET /`` requests ahead of it."""

    fast_path: TopListFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast_path = self.fast_path
        if (
            fast_path is not None
            and scope["type"] == "http"
            and scope["path"] == "/"
            and scope["method"] in _GET_OR_HEAD
            and not scope.get("root_path")
            and await fast_path(scope, receive, send)
        ):
            return
        await super().__call__(scope, receive, send)
