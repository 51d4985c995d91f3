"""HTTP plumbing shared by the provider clients: send, translate httpx errors, parse JSON."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from topcoins import redaction
from topcoins.producers.errors import BadResponseError, ServerError, UpstreamTimeout
from topcoins.producers.metrics import CALL_SECONDS, call_outcome, timed_stage

__all__ = ["call_deadline", "get", "parse_json", "parse_retry_after", "redact"]


def call_deadline(http: httpx.AsyncClient) -> float | None:
    """The longest of the client's timeouts: how long one whole call (body included) may take.

    httpx times each phase (connect, each read) on its own, so an answer that trickles in
    could take forever; ``get`` also bounds the whole call by this.
    """
    timeout = http.timeout
    values = [t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t]
    return max(values) if values else None


async def get(
    http: httpx.AsyncClient,
    path: str,
    *,
    params: Mapping[str, str | int],
    headers: Mapping[str, str],
    provider: str,
) -> httpx.Response:
    """``GET path``; timeouts and transport failures become ``UpstreamError``s.

    The whole call, body included, must finish within ``call_deadline(http)``. Messages
    name the path only: the query holds no secret, but we keep it out anyway.
    """
    started = time.perf_counter()
    outcome: str | None = None  # stays None for a cancelled call: not observed
    deadline = call_deadline(http)
    try:
        async with asyncio.timeout(deadline):
            response = await http.get(path, params=dict(params), headers=dict(headers))
        outcome = call_outcome(response.status_code)
        return response
    except TimeoutError as exc:
        outcome = "timeout"
        limit = f"within {deadline:g} s" if deadline else "in time"
        raise UpstreamTimeout(
            f"{provider}: GET {path} did not complete {limit}", provider=provider
        ) from exc
    except httpx.TimeoutException as exc:
        outcome = "timeout"
        raise UpstreamTimeout(
            f"{provider}: GET {path} timed out ({type(exc).__name__})", provider=provider
        ) from exc
    except httpx.TransportError as exc:
        outcome = "transport_error"
        raise ServerError(
            f"{provider}: GET {path} failed before an answer ({type(exc).__name__}: {exc})",
            provider=provider,
        ) from exc
    finally:
        if outcome is not None:
            CALL_SECONDS.labels(provider, outcome).observe(time.perf_counter() - started)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(response: httpx.Response, *, provider: str) -> Any:
    """The body as JSON; anything else (HTML, truncated, NaN) is a ``BadResponseError``."""
    try:
        with timed_stage(provider, "parse"):
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
    """``text`` with every form of ``secret`` replaced by ``***`` (provider text could echo
    a key); see ``topcoins.redaction``."""
    return redaction.redact(text, (secret,))
