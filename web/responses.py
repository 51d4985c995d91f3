"""Response types: prepared byte answers for the hot path and JSON bodies for the rest.

``PreparedResponse`` holds a finished answer (status, raw ASGI headers, body bytes) and
sends it without building a Starlette ``Response`` per request; ``GET /`` serves these
from a per-view cache. The slower endpoints use ``JSONBody`` and ``error_response``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.types import Send

__all__ = [
    "CSV_MEDIA_TYPE",
    "JSON_MEDIA_TYPE",
    "JSONBody",
    "PreparedResponse",
    "error_response",
    "etag_matches",
]

JSON_MEDIA_TYPE = "application/json"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"

_START = "http.response.start"
_BODY = "http.response.body"


class JSONBody(Response):
    """Compact UTF-8 JSON (no spaces, non-ASCII kept as is)."""

    media_type = JSON_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def error_response(
    status_code: int,
    code: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> Response:
    """The JSON error answer: ``{"error": code, "detail": what is wrong and what is allowed}``,
    followed by the members of ``extra``."""
    body = {"error": code, "detail": detail, **(extra or {})}
    return JSONBody(body, status_code=status_code, headers=headers)


@dataclass(frozen=True, slots=True)
class PreparedResponse:
    """A finished answer: sent as is, with its ``304 Not Modified`` twin ready for revalidation."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: bytes
    not_modified_headers: list[tuple[bytes, bytes]]

    @classmethod
    def build(
        cls,
        body: bytes,
        media_type: str,
        extra_headers: Mapping[str, str] | None = None,
        *,
        etag: bytes | None = None,
    ) -> PreparedResponse:
        """A 200 answer; its ``ETag`` is ``etag``, by default a strong hash of ``body``.

        The 304 twin carries the same headers minus ``Content-Type`` and ``Content-Length``.
        """
        if etag is None:
            digest = hashlib.blake2b(body, digest_size=12).hexdigest()
            etag = b'"' + digest.encode("ascii") + b'"'
        common = [(b"etag", etag), *_encode(extra_headers or {})]
        headers = [
            (b"content-type", media_type.encode("latin-1")),
            (b"content-length", str(len(body)).encode("ascii")),
            *common,
        ]
        return cls(200, headers, body, etag, common)

    async def send(self, send: Send, *, head: bool = False, not_modified: bool = False) -> None:
        """Send the answer (``head``: headers only; ``not_modified``: the 304 twin)."""
        if not_modified:
            await send({"type": _START, "status": 304, "headers": self.not_modified_headers})
            await send({"type": _BODY, "body": b""})
            return
        await send({"type": _START, "status": self.status, "headers": self.headers})
        await send({"type": _BODY, "body": b"" if head else self.body})


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """RFC 9110 weak comparison of an ``If-None-Match`` value against our (weak or strong)
    ``etag``: ``*`` matches, otherwise any listed tag with the same opaque part."""
    if if_none_match.strip() == b"*":
        return True
    opaque = etag.removeprefix(b"W/")
    for candidate in if_none_match.split(b","):
        if candidate.strip().removeprefix(b"W/") == opaque:
            return True
    return False


def _encode(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]
