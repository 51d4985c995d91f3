"""The query of ``GET /``: ``limit``, ``format`` and ``at``, and ``Accept`` negotiation.

Rules (each violation is a 400 that says what is wrong and what is allowed):

* ``limit``: ASCII digits only, 1 to ``settings.ranking_depth``; absent means
  ``min(200, ranking_depth)``.
* ``format``: ``json`` or ``csv`` (case-insensitive); absent means negotiated from
  ``Accept``: CSV when ``text/csv`` is preferred over ``application/json``, else JSON.
* ``at``: absent means the live list; otherwise the list as it was at that moment
  (``topcoins.web.history``). An ISO 8601 / RFC 3339 date and time with an explicit UTC
  offset (``topcoins.formats.parse_moment``, the rule of ``topcoins replay`` too):
  ``YYYY-MM-DDTHH:MM[:SS[.fraction]]`` then ``Z`` or ``+HH:MM`` / ``-HH:MM`` (``T`` may be
  a space, letters may be lower case). A time without an offset is refused (400 asking
  for one) rather than guessed as UTC. A query string decodes an unencoded ``+`` to a
  space, so ``12:00:00 01:00`` is read as ``12:00:00+01:00``. Fractions beyond the
  millisecond are dropped (Kafka timestamps are milliseconds); the moment must be
  1970-01-01T00:00:00Z or later (the first Kafka timestamp). Whether it is in the future
  or still retained is for the history reader to say (400 / 404, see ``errors``).
* each parameter at most once; no other parameters (a typo such as ``limt`` would
  otherwise silently return the default).

``GET /stream`` takes ``limit`` only (``STREAM_PARAMETERS``), with the same rules.

Parsing is memoised per raw query string and per ``Accept`` value (bounded), so the hot
path does no string work for repeated requests. A query with ``at`` is not the live
list: the endpoint never answers it from the live view's cache, and its ``meta``
describes the historical data rather than the live freshness.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import parse_qsl

from topcoins.formats import TIME_EXAMPLE, parse_moment
from topcoins.web.errors import InvalidParameter

__all__ = [
    "DEFAULT_LIMIT",
    "PARAMETERS",
    "STREAM_PARAMETERS",
    "Format",
    "QueryParser",
    "TopListQuery",
    "negotiate",
    "parse_at",
]

DEFAULT_LIMIT = 200
_MEMO_SIZE = 1024
_MAX_FIELDS = 8

# The query parameters of GET /; any other name is a 400 ``unknown_parameter``.
PARAMETERS = ("limit", "format", "at")
# The query parameters of GET /stream (always JSON, always live).
STREAM_PARAMETERS = ("limit",)


class Format(StrEnum):
    """A representation of the top list."""

    JSON = "json"
    CSV = "csv"


@dataclass(frozen=True, slots=True)
class TopListQuery:
    """A validated query; ``format`` is None when the client left it to ``Accept``;
    ``at`` is None for the live list, else a UTC moment (whole milliseconds)."""

    limit: int
    format: Format | None
    at: datetime | None = None


class QueryParser:
    """Validates ``GET /`` query strings against the configured ranking depth;
    ``parameters`` (a subset of ``PARAMETERS``) are the names accepted, by default all."""

    def __init__(self, max_limit: int, parameters: tuple[str, ...] = PARAMETERS) -> None:
        if max_limit < 1:
            raise ValueError(f"max_limit must be at least 1, got {max_limit}")
        if not set(parameters) <= set(PARAMETERS):
            raise ValueError(f"parameters must be among {PARAMETERS}, got {parameters}")
        self.max_limit = max_limit
        self.parameters = parameters
        self.default_limit = min(DEFAULT_LIMIT, max_limit)
        self._memo: dict[bytes, TopListQuery] = {}
        self._limit_rule = f"limit must be an integer from 1 to {max_limit}"

    def parse(self, query_string: bytes) -> TopListQuery:
        """The validated query; raises ``InvalidParameter`` for anything else."""
        query = self._memo.get(query_string)
        if query is None:
            query = self._parse(query_string)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[query_string] = query
        return query

    def _parse(self, query_string: bytes) -> TopListQuery:
        try:
            pairs = parse_qsl(
                query_string.decode("latin-1"),
                keep_blank_values=True,
                max_num_fields=_MAX_FIELDS,
                encoding="utf-8",
                errors="replace",
            )
        except ValueError as exc:
            raise InvalidParameter(
                "invalid_query", f"the query string has too many parameters; {self._allowed()}"
            ) from exc
        values: dict[str, list[str]] = {}
        for name, value in pairs:
            values.setdefault(name, []).append(value)
        unknown = sorted(set(values) - set(self.parameters))
        if unknown:
            raise InvalidParameter(
                "unknown_parameter",
                f"unknown query parameter {unknown[0]!r}; {self._allowed()}",
            )
        return TopListQuery(
            limit=self._limit(values.get("limit")),
            format=self._format(values.get("format")),
            at=_at(values.get("at")),
        )

    def _allowed(self) -> str:
        described = {
            "limit": f"limit (1 to {self.max_limit})",
            "format": "format (json or csv)",
            "at": "at (an ISO 8601 time with an offset)",
        }
        allowed = [described[name] for name in self.parameters]
        if len(allowed) == 1:
            return f"allowed: {allowed[0]}"
        return f"allowed: {', '.join(allowed[:-1])} and {allowed[-1]}"

    def _limit(self, given: list[str] | None) -> int:
        if given is None:
            return self.default_limit
        if len(given) > 1:
            raise InvalidParameter(
                "invalid_limit",
                f"limit was given {len(given)} times; give it once ({self._limit_rule})",
            )
        raw = given[0]
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
            raise InvalidParameter("invalid_limit", f"{self._limit_rule}, got {raw!r}")
        limit = int(raw)
        if not 1 <= limit <= self.max_limit:
            raise InvalidParameter("invalid_limit", f"{self._limit_rule}, got {raw!r}")
        return limit

    def _format(self, given: list[str] | None) -> Format | None:
        if given is None:
            return None
        if len(given) > 1:
            raise InvalidParameter(
                "invalid_format",
                f"format was given {len(given)} times; give it once (json or csv)",
            )
        try:
            return Format(given[0].lower())
        except ValueError:
            raise InvalidParameter(
                "invalid_format", f"format must be 'json' or 'csv', got {given[0]!r}"
            ) from None


def _at(given: list[str] | None) -> datetime | None:
    if given is None:
        return None
    if len(given) > 1:
        raise InvalidParameter(
            "invalid_at", f"at was given {len(given)} times; give it once (e.g. {TIME_EXAMPLE})"
        )
    return parse_at(given[0])


def parse_at(raw: str) -> datetime:
    """The UTC moment an ``at`` value names (``topcoins.formats.parse_moment``), truncated
    to whole milliseconds; raises ``InvalidParameter`` (``invalid_at``)."""
    try:
        return parse_moment(raw, "at", offset_example="+01:00, written %2B01:00 in a URL")
    except ValueError as exc:
        raise InvalidParameter("invalid_at", str(exc)) from None


_accept_memo: dict[bytes, Format] = {}


def negotiate(accept: bytes | None) -> Format:
    """The format an ``Accept`` header prefers; JSON unless CSV ranks strictly higher."""
    if accept is None:
        return Format.JSON
    chosen = _accept_memo.get(accept)
    if chosen is None:
        chosen = _negotiate(accept.decode("latin-1"))
        if len(_accept_memo) >= _MEMO_SIZE:
            _accept_memo.clear()
        _accept_memo[accept] = chosen
    return chosen


_MEDIA = {Format.JSON: ("application", "json"), Format.CSV: ("text", "csv")}


def _negotiate(accept: str) -> Format:
    # For each format: the q of the most specific matching range (exact > type/* > */*).
    best: dict[Format, tuple[int, float]] = {}
    for media_range in accept.split(","):
        media, *params = (part.strip() for part in media_range.split(";"))
        main, _, sub = media.lower().partition("/")
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        for fmt, (fmt_main, fmt_sub) in _MEDIA.items():
            if (main, sub) == (fmt_main, fmt_sub):
                specificity = 2
            elif (main, sub) == (fmt_main, "*"):
                specificity = 1
            elif (main, sub) == ("*", "*"):
                specificity = 0
            else:
                continue
            if specificity >= best.get(fmt, (-1, 0.0))[0]:
                best[fmt] = (specificity, q)
    csv_q = best.get(Format.CSV, (0, 0.0))[1]
    json_q = best.get(Format.JSON, (0, 0.0))[1]
    return Format.CSV if csv_q > 0 and csv_q > json_q else Format.JSON
