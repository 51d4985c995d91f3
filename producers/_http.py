"""HTTP plumbing shared by the provider clients: send, translate httpx errors, parse JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from topcoins.producers.errors import BadResponseError, ServerError, UpstreamTimeout

__all__ = ["get", "parse_json", "parse_retry_after", "redact"]


async def get(
    http: httpx.AsyncClient,
    path: str,
    *,
    params: Mapping[str, str | int],
    headers: Mapping[str, str],
    provider: str,
) -> httpx.Response:
    """``GET path``; timeouts and transport failures become ``UpstreamError``s.

    Messages name the path only: the query holds no secret, but we keep it out anyway.
    """
    try:
        return await http.get(path, params=dict(params), headers=dict(headers))
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(
            f"{provider}: GET {path} timed out ({type(exc).__name__})", provider=provider
        ) from exc
    except httpx.TransportError as exc:
        raise ServerError(
            f"{provider}: GET {path} failed before an answer ({type(exc).__name__}: {exc})",
            provider=provider,
        ) from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(response: httpx.Response, *, provider: str) -> Any:
    """The body as JSON; anything else (HTML, truncated, NaN) is a ``BadResponseError``."""
    try:
        return json.loads(response.content, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadResponseError(
            f"{provider}: GET {response.request.url.path} answered HTTP "
            f"{response.status_code} with a body that is not JSON ({exc})",
            provider=provider,
        ) from exc


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), if usable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def redact(text: str, secret: str) -> str:
    """``text`` with ``secret`` replaced by ``***`` (provider text could echo a key)."""
    return text.replace(secret, "***") if secret else text
