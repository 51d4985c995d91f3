"""The query of ``GET /``: ``limit`` and ``format``, and ``Accept`` negotiation.

Rules (each violation is a 400 that says what is wrong and what is allowed):

* ``limit``: ASCII digits only, 1 to ``settings.ranking_depth``; absent means
  ``min(200, ranking_depth)``.
* ``format``: ``json`` or ``csv`` (case-insensitive); absent means negotiated from
  ``Accept``: CSV when ``text/csv`` is preferred over ``application/json``, else JSON.
* each parameter at most once; no other parameters (a typo such as ``limt`` would
  otherwise silently return the default).

Parsing is memoised per raw query string and per ``Accept`` value (bounded), so the hot
path does no string work for repeated requests.

Adding a parameter (the planned ``at=<ISO time>`` for a historical list): name it in
``PARAMETERS``, give ``TopListQuery`` a field with a default (None: the live list), add a
``_<name>`` validator to ``QueryParser`` and extend ``_allowed``. A query with ``at`` is
not the live list: it must not be answered from the live view's cache, and its ``meta``
describes the historical data rather than the live freshness.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl

from topcoins.web.errors import InvalidParameter

__all__ = ["DEFAULT_LIMIT", "PARAMETERS", "Format", "QueryParser", "TopListQuery", "negotiate"]

DEFAULT_LIMIT = 200
_MEMO_SIZE = 1024
_MAX_FIELDS = 8

# The query parameters of GET /; any other name is a 400 ``unknown_parameter``.
PARAMETERS = ("limit", "format")


class Format(StrEnum):
    """A representation of the top list."""

    JSON = "json"
    CSV = "csv"


@dataclass(frozen=True, slots=True)
class TopListQuery:
    """A validated query; ``format`` is None when the client left it to ``Accept``."""

    limit: int
    format: Format | None


class QueryParser:
    """Validates ``GET /`` query strings against the configured ranking depth."""

    def __init__(self, max_limit: int) -> None:
        if max_limit < 1:
            raise ValueError(f"max_limit must be at least 1, got {max_limit}")
        self.max_limit = max_limit
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
        unknown = sorted(set(values) - set(PARAMETERS))
        if unknown:
            raise InvalidParameter(
                "unknown_parameter",
                f"unknown query parameter {unknown[0]!r}; {self._allowed()}",
            )
        return TopListQuery(
            limit=self._limit(values.get("limit")), format=self._format(values.get("format"))
        )

    def _allowed(self) -> str:
        return f"allowed: limit (1 to {self.max_limit}) and format (json or csv)"

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
