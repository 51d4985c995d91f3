"""How a view becomes bytes: the JSON and CSV bodies of ``GET /`` and the diagnostics.

Numbers (``price_usd``, ``volume_24h_usd``, ``market_cap_usd``, ``percent_change_24h``) are
written with the shortest digits that read back as the same float (Python's ``repr``), in
positional notation and always with a decimal point: ``0.00001234`` rather than
``1.234e-05``, ``67000.0`` rather than ``67000`` (``topcoins.formats.format_number``). JSON
and CSV use the same text, so both round-trip to the stored double.
Timestamps are ISO 8601 UTC with milliseconds and a ``Z``: ``2024-05-01T12:00:00.000Z``
(``topcoins.formats.iso_utc``); in HTTP headers they are HTTP dates
(``Wed, 01 May 2024 12:00:00 GMT``).

The diagnostics body uses the same number text.

Bodies are assembled from per-entry fragments, so the answer for any ``limit`` is one
``join`` over the first ``limit`` fragments of the view. A JSON body is its ``data`` part,
which depends only on the view and ``limit``, followed by its ``meta``, which also carries
the ages and staleness of a ``Freshness`` (see ``topcoins.web.freshness``). A historical
answer (``GET /?at=``) has the same ``data`` and a ``meta`` without ages or staleness
(``historical_meta``).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Protocol

from topcoins.csv_cells import spreadsheet_safe
from topcoins.formats import format_number, iso_utc
from topcoins.web.freshness import Freshness
from topcoins.web.view import TopListEntry, TopListView

__all__ = [
    "CSV_HEADER",
    "csv_body",
    "csv_lines",
    "csv_row",
    "diagnostics_body",
    "diagnostics_item",
    "diagnostics_summary",
    "historical_meta",
    "http_date",
    "json_body",
    "json_data",
    "json_item",
    "json_meta",
]

CSV_COLUMNS = ("Rank", "Symbol", "Price USD")


def http_date(moment: datetime) -> str:
    """``Wed, 01 May 2024 12:00:00 GMT`` (RFC 9110 IMF-fixdate; sub-seconds dropped)."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _json_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _json_number(value: float | None) -> str:
    return "null" if value is None else format_number(value)


def _json_time(moment: datetime | None) -> str:
    return "null" if moment is None else f'"{iso_utc(moment)}"'


def json_item(entry: TopListEntry) -> bytes:
    """One element of ``data``: rank, symbol, name, price_usd, cmc_id, volume_24h_usd,
    market_cap_usd, percent_change_24h, price_fetched_at (null when there is no price) and
    rank_fetched_at."""
    return (
        f'{{"rank":{entry.rank},"symbol":{_json_str(entry.symbol)},'
        f'"name":{_json_str(entry.name)},"price_usd":{_json_number(entry.price_usd)},'
        f'"cmc_id":{"null" if entry.cmc_id is None else entry.cmc_id},'
        f'"volume_24h_usd":{_json_number(entry.volume_24h_usd)},'
        f'"market_cap_usd":{_json_number(entry.market_cap_usd)},'
        f'"percent_change_24h":{_json_number(entry.percent_change_24h)},'
        f'"price_fetched_at":{_json_time(entry.price_fetched_at)},'
        f'"rank_fetched_at":{_json_time(entry.rank_fetched_at)}}}'
    ).encode()


def json_data(items: Sequence[bytes], limit: int) -> bytes:
    """The start of a JSON body, up to ``"meta":``: ``{"data":[first limit items],"meta":``."""
    return b"".join((b'{"data":[', b",".join(items[:limit]), b'],"meta":'))


def json_meta(view: TopListView, limit: int, freshness: Freshness) -> dict[str, Any]:
    """The ``meta`` object: fetch times, ages, staleness, counts."""
    return {
        "ranking_updated_at": iso_utc(view.ranking_updated_at),
        "prices_updated_at": iso_utc(view.prices_updated_at),
        "ranking_age_seconds": freshness.ranking.age_seconds,
        "prices_age_seconds": freshness.prices.age_seconds,
        "stale": freshness.stale,
        "stale_sources": [str(source) for source in freshness.stale_sources],
        "total_ranked": view.total_ranked,
        "provider_total": view.provider_total,
        "count": min(limit, view.total_ranked),
        "limit": limit,
    }


class PastTimes(Protocol):
    """What ``historical_meta`` reads of a past list (``rendered.PastList``)."""

    @property
    def ranking_updated_at(self) -> datetime: ...
    @property
    def prices_updated_at(self) -> datetime | None: ...
    @property
    def total_ranked(self) -> int: ...
    @property
    def provider_total(self) -> int | None: ...


def historical_meta(view: PastTimes, at: datetime, limit: int) -> dict[str, Any]:
    """The ``meta`` of the list as it was at ``at``: the moment asked for, ``historical``,
    the fetch times of the snapshots in force then, counts. No ages and no staleness: the
    list is not stale, it is explicitly the one of that moment."""
    return {
        "at": iso_utc(at),
        "historical": True,
        "ranking_updated_at": iso_utc(view.ranking_updated_at),
        "prices_updated_at": iso_utc(view.prices_updated_at),
        "total_ranked": view.total_ranked,
        "provider_total": view.provider_total,
        "count": min(limit, view.total_ranked),
        "limit": limit,
    }


def json_body(view: TopListView, items: Sequence[bytes], limit: int, freshness: Freshness) -> bytes:
    """``{"data": [first limit items], "meta": {...}}`` as compact UTF-8 JSON."""
    meta = json.dumps(json_meta(view, limit, freshness), separators=(",", ":"))
    return b"".join((json_data(items, limit), meta.encode("utf-8"), b"}"))


def csv_lines(rows: Iterable[Sequence[str]]) -> bytes:
    """RFC 4180 CSV (minimal quoting, CRLF line ends) of ``rows``, UTF-8 encoded."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


CSV_HEADER = csv_lines([CSV_COLUMNS])


def csv_row(entry: TopListEntry) -> bytes:
    """One CSV line: rank, symbol, price (empty when unknown)."""
    price = "" if entry.price_usd is None else format_number(entry.price_usd)
    return csv_lines([(str(entry.rank), spreadsheet_safe(entry.symbol), price)])


def csv_body(rows: Sequence[bytes], limit: int) -> bytes:
    """The header line, then the first ``limit`` rows."""
    return CSV_HEADER + b"".join(rows[:limit])


def diagnostics_item(entry: TopListEntry) -> bytes:
    """One element of the diagnostics ``data``: how this asset was matched."""
    return (
        f'{{"rank":{entry.rank},"symbol":{_json_str(entry.symbol)},'
        f'"name":{_json_str(entry.name)},'
        f'"cmc_id":{"null" if entry.cmc_id is None else entry.cmc_id},'
        f'"match_rule":{_json_str(entry.match_rule)},'
        f'"price_usd":{_json_number(entry.price_usd)}}}'
    ).encode()


def diagnostics_body(view: TopListView) -> bytes:
    """``{"data": [every asset], "match_rules": {rule: count}, "meta": {...}}``."""
    summary = json.dumps(diagnostics_summary(view), ensure_ascii=False, separators=(",", ":"))
    return b"".join(
        (
            b'{"data":[',
            b",".join(diagnostics_item(entry) for entry in view.entries),
            b"],",
            summary[1:].encode(),  # the summary object's members follow "data"
        )
    )


def diagnostics_summary(view: TopListView) -> dict[str, Any]:
    """Counts per match rule (most frequent first) and where the view came from."""
    rules = Counter(entry.match_rule for entry in view.entries)
    return {
        "match_rules": dict(sorted(rules.items(), key=lambda item: (-item[1], item[0]))),
        "meta": {
            "generation": view.generation,
            "ranking_updated_at": iso_utc(view.ranking_updated_at),
            "prices_updated_at": iso_utc(view.prices_updated_at),
            "ranking_snapshot_id": view.ranking_snapshot_id,
            "pricing_snapshot_id": view.pricing_snapshot_id,
            "total_ranked": view.total_ranked,
            "unmatched": view.unmatched,
            "without_price": sum(1 for entry in view.entries if entry.price_usd is None),
        },
    }
