"""Everything that can go wrong when a producer asks a provider for a snapshot.

Behaviour lives in class attributes, so callers check types, never messages::

    UpstreamError                 retriable  fatal  kind
    ├── AuthError                 no         yes    auth          fix the API key env var
    ├── RateLimitError            yes        no     rate_limit    carries retry_after (s)
    │   └── LocalLimitError       yes        no     rate_limit    our own limits; nothing sent
    ├── ServerError               yes        no     server        5xx or connection failure
    ├── UpstreamTimeout           yes        no     timeout       the HTTP call timed out
    ├── BadResponseError          no         no     bad_response  counted, never published
    └── ParameterError            no         no     parameter     our request was refused

Messages are built by the clients from the request path and the provider's own error
text; they never contain an API key (keys travel in request headers only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "WINDOW_SECONDS",
    "AuthError",
    "BadResponseError",
    "LocalLimitError",
    "ParameterError",
    "RateLimitError",
    "RateLimitUsage",
    "ServerError",
    "UpstreamError",
    "UpstreamTimeout",
]

# Length of each CryptoCompare rate-limit window, in seconds (a month counted as 30 days).
WINDOW_SECONDS: Mapping[str, float] = MappingProxyType(
    {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "month": 30 * 86400}
)


class UpstreamError(Exception):
    """A provider call failed; ``provider`` names the provider."""

    retriable: bool = False
    fatal: bool = False
    kind: str = "upstream"

    def __init__(self, message: str, *, provider: str) -> None:
        super().__init__(message)
        self.provider = provider


class AuthError(UpstreamError):
    """The API key is missing, invalid, disabled or its plan does not cover the endpoint."""

    fatal = True
    kind = "auth"


class RateLimitError(UpstreamError):
    """The provider refused the call because a rate or credit limit was reached."""

    retriable = True
    kind = "rate_limit"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retry_after: float | None = None,
        usage: RateLimitUsage | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after
        self.usage = usage


class LocalLimitError(RateLimitError):
    """Our own limits (credit budget, calls per window, a provider's hold) refused the call.

    Nothing was sent; ``retry_after`` says when a call would be allowed again.
    """


class ServerError(UpstreamError):
    """The provider answered 5xx, or could not be reached at all (``status_code`` None)."""

    retriable = True
    kind = "server"

    def __init__(self, message: str, *, provider: str, status_code: int | None = None) -> None:
        super().__init__(message, provider=provider)
        self.status_code = status_code


class UpstreamTimeout(UpstreamError):
    """The HTTP call did not complete within ``HTTP_TIMEOUT_SECONDS``."""

    retriable = True
    kind = "timeout"


class BadResponseError(UpstreamError):
    """The answer is not JSON, has an unexpected shape, or does not fit our schema."""

    kind = "bad_response"


class ParameterError(UpstreamError):
    """The provider rejected a request parameter (CryptoCompare Type 2, CoinMarketCap 400)."""

    kind = "parameter"


@dataclass(frozen=True)
class RateLimitUsage:
    """CryptoCompare's ``RateLimit`` block: calls made and allowed per window."""

    calls_made: Mapping[str, int] = field(default_factory=dict)
    max_calls: Mapping[str, int] = field(default_factory=dict)

    @property
    def exceeded(self) -> tuple[str, ...]:
        """The windows (``second`` … ``month``) whose limit is reached, shortest first."""
        return tuple(
            window
            for window in WINDOW_SECONDS
            if window in self.max_calls and self.calls_made.get(window, 0) >= self.max_calls[window]
        )

    @property
    def retry_after(self) -> float | None:
        """Seconds until the longest exceeded window has surely rolled over, if any."""
        exceeded = self.exceeded
        return WINDOW_SECONDS[exceeded[-1]] if exceeded else None
