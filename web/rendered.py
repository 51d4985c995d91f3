"""Encoded answers for one view, built on first use and kept in a bounded LRU cache.

A ``RenderedView`` belongs to exactly one ``TopListView``; when the replica publishes a
new view the endpoint drops the old ``RenderedView`` with everything it cached. Per view,
the per-entry JSON and CSV fragments are encoded once, and each ``(format, limit)`` body
(with its headers and ETag) once, up to ``max_entries`` bodies.
"""

from __future__ import annotations

from collections import OrderedDict

from topcoins.web.encoding import csv_body, csv_row, diagnostics_body, json_body, json_item
from topcoins.web.params import Format
from topcoins.web.responses import CSV_MEDIA_TYPE, JSON_MEDIA_TYPE, PreparedResponse
from topcoins.web.view import TopListView

__all__ = ["TOP_LIST_HEADERS", "RenderedView"]

# Every answer of GET / may be revalidated with its ETag, and depends on Accept.
TOP_LIST_HEADERS = {"Cache-Control": "no-cache", "Vary": "Accept"}


class RenderedView:
    """The ``GET /`` and ``GET /diagnostics`` answers of one view, encoded lazily."""

    def __init__(self, view: TopListView, max_entries: int = 256) -> None:
        self.view = view
        self.max_entries = max_entries
        self._json_items: tuple[bytes, ...] | None = None
        self._csv_rows: tuple[bytes, ...] | None = None
        self._diagnostics: bytes | None = None
        self._cache: OrderedDict[tuple[Format, int], PreparedResponse] = OrderedDict()

    def response(self, fmt: Format, limit: int) -> PreparedResponse:
        """The answer to ``GET /?format=fmt&limit=limit`` for this view."""
        key = (fmt, limit)
        cache = self._cache
        prepared = cache.get(key)
        if prepared is not None:
            cache.move_to_end(key)
            return prepared
        prepared = self._encode(fmt, limit)
        if len(cache) >= self.max_entries:
            cache.popitem(last=False)
        cache[key] = prepared
        return prepared

    def diagnostics_body(self) -> bytes:
        """The ``GET /diagnostics`` JSON body of this view."""
        if self._diagnostics is None:
            self._diagnostics = diagnostics_body(self.view)
        return self._diagnostics

    @property
    def cached(self) -> int:
        """How many ``(format, limit)`` bodies are cached."""
        return len(self._cache)

    def _encode(self, fmt: Format, limit: int) -> PreparedResponse:
        if fmt is Format.CSV:
            if self._csv_rows is None:
                self._csv_rows = tuple(csv_row(entry) for entry in self.view.entries)
            body = csv_body(self._csv_rows, limit)
            return PreparedResponse.build(body, CSV_MEDIA_TYPE, TOP_LIST_HEADERS)
        if self._json_items is None:
            self._json_items = tuple(json_item(entry) for entry in self.view.entries)
        body = json_body(self.view, self._json_items, limit)
        return PreparedResponse.build(body, JSON_MEDIA_TYPE, TOP_LIST_HEADERS)
