"""The web component's exceptions and the handlers that turn them into JSON answers.

Every exception derives from ``WebError``::

    WebError
    ├── RequestError             a request we answer with a JSON error (status, code, detail)
    │   ├── InvalidParameter     400: a query parameter is missing its rules
    │   ├── NoDataYet            503: no top list has arrived from Kafka yet
    │   ├── HistoryNotFound      404: the raw topics do not hold the moment ``at`` names
    │   ├── HistoryReadFailed    503: reading the raw topics failed; ask again later
    │   ├── HistoryBusy          503: too many ``at`` requests waiting, or one took too long
    │   └── TooManyStreams       503: this process already serves its maximum of streams
    └── ReplicaError             a message on the top topic that the replica cannot use
        ├── InvalidMessage       undecodable bytes or a record that breaks the topic contract
        └── IncompleteGeneration a TopListMeta names symbols whose rows never arrived
            └── MixedGeneration  ... or whose rows belong to another generation

``exception_handlers`` maps them (and Starlette's 404/405, and anything unexpected) to
``{"error": code, "detail": "what is wrong and what is allowed"}`` bodies (plus the
members of ``RequestError.extra``); a client never sees a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ExceptionHandler

from topcoins.web.responses import error_response

__all__ = [
    "RETRY_AFTER_SECONDS",
    "HistoryBusy",
    "HistoryNotFound",
    "HistoryReadFailed",
    "IncompleteGeneration",
    "InvalidMessage",
    "InvalidParameter",
    "MixedGeneration",
    "NoDataYet",
    "ReplicaError",
    "RequestError",
    "TooManyStreams",
    "WebError",
    "exception_handlers",
    "unexpected_error_response",
]

logger = logging.getLogger(__name__)

# What a 503 tells clients to wait before asking again.
RETRY_AFTER_SECONDS = 5


class WebError(Exception):
    """Root of every exception raised by topcoins.web."""


class RequestError(WebError):
    """A request answered with a JSON error body; subclasses fix the status."""

    status_code = 400

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

    @property
    def headers(self) -> Mapping[str, str]:
        """Extra response headers."""
        return {}

    @property
    def extra(self) -> Mapping[str, object]:
        """Extra members of the JSON body, after ``error`` and ``detail``."""
        return {}


class InvalidParameter(RequestError):
    """A query parameter is unknown, repeated or out of range (HTTP 400)."""

    status_code = 400


class NoDataYet(RequestError):
    """No complete top list has been received yet (HTTP 503 with ``Retry-After``)."""

    status_code = 503

    def __init__(
        self,
        code: str = "no_data_yet",
        detail: str = "no top list has been received from Kafka yet; "
        f"retry in {RETRY_AFTER_SECONDS} seconds",
    ) -> None:
        super().__init__(code, detail)

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


class HistoryNotFound(RequestError):
    """``at`` names a moment the raw topics do not (or no longer) hold (HTTP 404).

    ``earliest`` (the body's member of that name) is the first moment that can be
    answered, as ``2024-05-01T12:00:00.000Z``, or None (null) when the raw topics hold no
    ranking at all yet.
    """

    status_code = 404

    def __init__(self, detail: str, earliest: str | None) -> None:
        super().__init__("history_unavailable", detail)
        self.earliest = earliest

    @property
    def extra(self) -> Mapping[str, object]:
        return {"earliest": self.earliest}


class HistoryReadFailed(RequestError):
    """Reading the raw topics failed or timed out (HTTP 503 with ``Retry-After``)."""

    status_code = 503

    def __init__(
        self,
        detail: str = "reading the list's history from Kafka failed; "
        f"retry in {RETRY_AFTER_SECONDS} seconds",
    ) -> None:
        super().__init__("history_read_failed", detail)

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


class HistoryBusy(RequestError):
    """Too many ``at`` requests are waiting (``history_busy``), or this one ran out of time
    (``history_timeout``): HTTP 503 with ``Retry-After``."""

    status_code = 503

    def __init__(self, code: str, detail: str, retry_after: int) -> None:
        super().__init__(code, detail)
        self.retry_after = retry_after

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(self.retry_after)}


class TooManyStreams(RequestError):
    """``GET /stream`` past ``WEB_STREAM_MAX`` open streams (HTTP 503 with ``Retry-After``)."""

    status_code = 503

    def __init__(self, maximum: int) -> None:
        super().__init__(
            "too_many_streams",
            f"this process already serves its maximum of {maximum} streams (WEB_STREAM_MAX); "
            f"retry in {RETRY_AFTER_SECONDS} seconds",
        )

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


class ReplicaError(WebError):
    """A message on the top topic that cannot be applied; it is logged, counted and skipped."""


class InvalidMessage(ReplicaError):
    """Bytes that do not decode, or a record that breaks the top topic's key contract."""


class IncompleteGeneration(ReplicaError):
    """A TopListMeta lists symbols that have no row; the generation is not published."""

    def __init__(self, missing: tuple[str, ...], total: int) -> None:
        shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
        super().__init__(
            f"TopListMeta lists {total} symbols but {len(missing)} have no row ({shown}); "
            "keeping the previous view until a complete generation arrives"
        )
        self.missing = missing
        self.total = total


class MixedGeneration(IncompleteGeneration):
    """A TopListMeta lists symbols whose rows belong to another generation (another
    snapshot pair); the generation is not published."""

    def __init__(self, foreign: tuple[str, ...], total: int, generation: object) -> None:
        shown = ", ".join(foreign[:10]) + (", ..." if len(foreign) > 10 else "")
        ReplicaError.__init__(
            self,
            f"TopListMeta of generation {generation} lists {total} symbols but the rows of "
            f"{len(foreign)} belong to another generation ({shown}); keeping the previous "
            "view until a consistent generation arrives",
        )
        self.missing = foreign
        self.total = total


async def _request_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    return error_response(exc.status_code, exc.code, exc.detail, exc.headers, exc.extra)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    # scope["path"], not request.url.path: building request.url decodes the raw query
    # string as UTF-8, so a query such as ``%80`` sent raw (b"\x80") would turn this 404
    # into a 500 (found by tests/web/test_app_fuzz.py).
    method, path = request.method, request.scope["path"]
    if exc.status_code == 404:
        detail = f"there is no resource at {path}; try GET /?limit=10"
        return error_response(404, "not_found", detail)
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "GET")
        detail = f"{method} is not allowed on {path}; allowed: {allowed}"
        return error_response(405, "method_not_allowed", detail, exc.headers)
    return error_response(exc.status_code, "http_error", str(exc.detail), exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return unexpected_error_response(request.method, request.scope["path"], exc)


def unexpected_error_response(method: str, path: str, exc: Exception) -> Response:
    """Log ``exc`` (a bug) and answer 500 ``internal_error`` without its details."""
    logger.error(
        "unhandled error while serving a request",
        exc_info=exc,
        extra={"method": method, "path": path},
    )
    detail = "the server failed to answer this request; it has been logged"
    return error_response(500, "internal_error", detail)


exception_handlers: Mapping[type[Exception] | int, ExceptionHandler] = {
    RequestError: _request_error,
    HTTPException: _http_exception,
    Exception: _unexpected,
}
