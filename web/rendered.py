"""Encoded answers for one view, built on first use and kept in bounded caches.

A ``RenderedView`` belongs to exactly one ``TopListView``; when the replica publishes a
new view the endpoint drops the old ``RenderedView`` with everything it cached.

Ages make an answer depend on the time, so it is built in two layers:

* per ``(format, limit)``, once per view (bounded LRU): the part that depends only on the
  view (the CSV body; the JSON ``data`` part) and a digest of it;
* per ``(format, limit)`` and ``Freshness`` (a new one at most once a second, see
  ``topcoins.web.freshness``): the finished ``PreparedResponse``, i.e. that part plus the
  JSON ``meta`` and the freshness headers. A new ``Freshness`` drops these answers; the
  next request for each ``(format, limit)`` joins its cached part with a small ``meta``.

Headers of every ``GET /`` answer (and of its 304):

* ``ETag``: the digest of the view-dependent part plus the stale sources, so it changes
  with the data and whenever a source turns stale or fresh again, and never merely with
  age. The JSON body's ``meta`` ages change every second under the same tag, so JSON tags
  are weak (``W/"..."``); CSV bodies do not carry ages, so CSV tags are strong.
* ``Last-Modified``: the older of the ranking's and the prices' fetch times (the ranking's
  when there are no prices), so it never makes the list look newer than its oldest part.
  Revalidation is by ``ETag`` only (``If-Modified-Since`` is not evaluated), so this
  choice cannot produce a wrong 304.
* ``X-Data-Age``: whole seconds since the oldest source was fetched.
* ``X-Data-Stale``: ``true`` when any source is stale, else ``false``.
* ``Cache-Control: no-cache`` and ``Vary: Accept``.

A historical answer (``GET /?at=``, ``render_historical``) has its rows encoded once per
snapshot pair (``PastList``) and its ``meta`` on each request. It has the same ``data``
and CSV rows, the ``meta`` of ``encoding.historical_meta``, the same ``Last-Modified``,
``Cache-Control`` and ``Vary``, no ``X-Data-Age`` / ``X-Data-Stale`` (it carries no ages),
and a strong ``ETag`` of its bytes in both formats, as its body never changes with time.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from topcoins.domain import JoinResult
from topcoins.formats import iso_utc
from topcoins.web.encoding import (
    csv_body,
    csv_row,
    diagnostics_body,
    historical_meta,
    http_date,
    json_data,
    json_item,
    json_meta,
)
from topcoins.web.freshness import Freshness
from topcoins.web.params import Format
from topcoins.web.responses import CSV_MEDIA_TYPE, JSON_MEDIA_TYPE, PreparedResponse
from topcoins.web.stages import STAGE_SECONDS
from topcoins.web.view import TopListView, view_of_join

__all__ = [
    "TOP_LIST_HEADERS",
    "PastList",
    "RenderedView",
    "past_list_of",
    "render_historical",
]

# Every answer of GET / may be revalidated with its ETag, and depends on Accept.
TOP_LIST_HEADERS = {"Cache-Control": "no-cache", "Vary": "Accept"}
_RENDER_SECONDS = STAGE_SECONDS.labels("render")

_Key = tuple[Format, int]


@dataclass(frozen=True, slots=True)
class _Part:
    """What an answer owes to the view alone: body bytes (all of CSV, JSON up to meta)."""

    head: bytes
    digest: bytes


@dataclass(frozen=True, slots=True)
class _Stamp:
    """What every answer owes to one ``Freshness``: headers and the ETag's stale suffix."""

    headers: dict[str, str]
    etag_suffix: bytes

    @classmethod
    def of(cls, freshness: Freshness, last_modified: str) -> _Stamp:
        stale = freshness.stale_sources
        headers = {
            **TOP_LIST_HEADERS,
            "Last-Modified": last_modified,
            "X-Data-Age": str(freshness.data_age_seconds),
            "X-Data-Stale": "true" if stale else "false",
        }
        suffix = "".join(f"-stale-{source}" for source in stale)
        return cls(headers, suffix.encode("ascii"))


class RenderedView:
    """The ``GET /`` and ``GET /diagnostics`` answers of one view, encoded lazily."""

    def __init__(self, view: TopListView, max_entries: int = 256) -> None:
        self.view = view
        self.max_entries = max_entries
        self.last_modified = _last_modified(view)
        self._json_items: tuple[bytes, ...] | None = None
        self._csv_rows: tuple[bytes, ...] | None = None
        self._diagnostics: bytes | None = None
        self._parts: OrderedDict[_Key, _Part] = OrderedDict()
        self._freshness: Freshness | None = None
        self._stamp: _Stamp | None = None
        self._answers: dict[_Key, PreparedResponse] = {}

    def response(self, fmt: Format, limit: int, freshness: Freshness) -> PreparedResponse:
        """The answer to ``GET /?format=fmt&limit=limit`` for this view at ``freshness``."""
        if freshness is not self._freshness:
            self._freshness = freshness
            self._stamp = _Stamp.of(freshness, self.last_modified)
            self._answers = {}
        key = (fmt, limit)
        answers = self._answers
        prepared = answers.get(key)
        if prepared is None:
            prepared = self._answer(fmt, limit, freshness)
            if len(answers) >= self.max_entries:
                del answers[next(iter(answers))]
            answers[key] = prepared
        return prepared

    def diagnostics_body(self) -> bytes:
        """The ``GET /diagnostics`` JSON body of this view."""
        if self._diagnostics is None:
            self._diagnostics = diagnostics_body(self.view)
        return self._diagnostics

    @property
    def cached(self) -> int:
        """How many ``(format, limit)`` view-dependent parts are cached."""
        return len(self._parts)

    def _answer(self, fmt: Format, limit: int, freshness: Freshness) -> PreparedResponse:
        stamp = self._stamp
        assert stamp is not None
        part = self._part(fmt, limit)
        if fmt is Format.CSV:
            etag = b'"' + part.digest + stamp.etag_suffix + b'"'
            return PreparedResponse.build(part.head, CSV_MEDIA_TYPE, stamp.headers, etag=etag)
        meta = json.dumps(json_meta(self.view, limit, freshness), separators=(",", ":"))
        body = b"".join((part.head, meta.encode("utf-8"), b"}"))
        etag = b'W/"' + part.digest + stamp.etag_suffix + b'"'
        return PreparedResponse.build(body, JSON_MEDIA_TYPE, stamp.headers, etag=etag)

    def _part(self, fmt: Format, limit: int) -> _Part:
        key = (fmt, limit)
        parts = self._parts
        part = parts.get(key)
        if part is not None:
            parts.move_to_end(key)
            return part
        with _RENDER_SECONDS.time():
            part = self._encode_part(fmt, limit)
        if len(parts) >= self.max_entries:
            parts.popitem(last=False)
        parts[key] = part
        return part

    def _encode_part(self, fmt: Format, limit: int) -> _Part:
        if fmt is Format.CSV:
            if self._csv_rows is None:
                self._csv_rows = tuple(csv_row(entry) for entry in self.view.entries)
            body = csv_body(self._csv_rows, limit)
            return _Part(body, _digest(body))
        if self._json_items is None:
            self._json_items = tuple(json_item(entry) for entry in self.view.entries)
        head = json_data(self._json_items, limit)
        # The meta's view-dependent members, so that a tag also changes with them.
        view = self.view
        members = (
            iso_utc(view.ranking_updated_at),
            iso_utc(view.prices_updated_at),
            view.total_ranked,
            view.provider_total,
            limit,
        )
        return _Part(head, _digest(head + repr(members).encode("utf-8")))


@dataclass(frozen=True, slots=True)
class PastList:
    """One past list (``GET /?at=``) with its rows encoded: built by ``past_list_of`` where
    the join is (the web's worker process), small to hand back (bytes, a few values), and
    kept by the history reader; only the ``meta`` differs between the moments it answers."""

    json_items: tuple[bytes, ...]  # every row as a JSON ``data`` item
    csv_rows: tuple[bytes, ...]  # every row as a CSV line
    last_modified: str
    ranking_updated_at: datetime
    prices_updated_at: datetime | None
    total_ranked: int
    provider_total: int | None


def past_list_of(result: JoinResult) -> PastList:
    """The joined list ``result``, encoded (a ``present`` for ``HistoryReader``)."""
    view = view_of_join(result)
    return PastList(
        json_items=tuple(json_item(entry) for entry in view.entries),
        csv_rows=tuple(csv_row(entry) for entry in view.entries),
        last_modified=_last_modified(view),
        ranking_updated_at=view.ranking_updated_at,
        prices_updated_at=view.prices_updated_at,
        total_ranked=view.total_ranked,
        provider_total=view.provider_total,
    )


def render_historical(past: PastList, at: datetime, fmt: Format, limit: int) -> PreparedResponse:
    """The answer to ``GET /?at=...&format=fmt&limit=limit``, ``past`` being the list as it
    was at ``at`` (see the module docstring for its headers)."""
    headers = {**TOP_LIST_HEADERS, "Last-Modified": past.last_modified}
    if fmt is Format.CSV:
        body = csv_body(past.csv_rows, limit)
        return PreparedResponse.build(body, CSV_MEDIA_TYPE, headers)
    meta = json.dumps(historical_meta(past, at, limit), separators=(",", ":"))
    body = b"".join((json_data(past.json_items, limit), meta.encode("utf-8"), b"}"))
    return PreparedResponse.build(body, JSON_MEDIA_TYPE, headers)


def _last_modified(view: TopListView) -> str:
    # The older of the two fetch times, so the list never looks newer than its oldest part.
    return http_date(min(filter(None, (view.ranking_updated_at, view.prices_updated_at))))


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=12).hexdigest().encode("ascii")
