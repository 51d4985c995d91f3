"""``topcoins replay``: rebuild the joined list from the raw topics and print it.

    topcoins replay [--since ISO] [--until ISO | --at ISO] [--limit N]
                    [--format json|csv|table]

``--at`` prints the list as it was at that moment (``HistoryReader.top_list_at``: an
offset lookup, fast for any moment the raw topics retain). Otherwise every snapshot from
``--since`` (default: the oldest retained) to ``--until`` (default: now) is folded into
fresh state (``HistoryReader.replay``). Neither touches the running worker: the reader has
no consumer group and writes nothing.

The rows (rank, symbol, name, cmc_id, price_usd, match_rule) go to stdout, a one-line
summary to stderr. Times are ISO 8601 (``2026-11-27T12:00:00Z``; no offset means UTC).
Exit status: 0; 1 with a one-line reason when the history is not available or the broker
fails; 2 for bad arguments.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TextIO

from topcoins.csv_cells import spreadsheet_safe
from topcoins.kafka_access import check_access
from topcoins.kafka_security import KafkaAccessError, kafka_client_options
from topcoins.logs import configure_logging
from topcoins.schemas.records import TopCoin
from topcoins.settings import Settings
from topcoins.streams.aliases import AliasTable
from topcoins.streams.errors import StreamsError
from topcoins.streams.history import HistoryReader
from topcoins.streams.join import JoinResult

__all__ = ["COLUMNS", "OutputFormat", "parse_moment", "render", "run_replay"]

COLUMNS = ("rank", "symbol", "name", "cmc_id", "price_usd", "match_rule")
_PROG = "topcoins replay"


class OutputFormat(StrEnum):
    """How ``topcoins replay`` prints the list."""

    JSON = "json"
    CSV = "csv"
    TABLE = "table"


def parse_moment(text: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime; without an offset it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO 8601 time (e.g. 2026-11-27T12:00:00Z)") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def run_replay(
    settings: Settings,
    *,
    since: str | None = None,
    until: str | None = None,
    at: str | None = None,
    limit: int | None = None,
    output: str = OutputFormat.TABLE,
    aliases: AliasTable | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``topcoins replay``; return the exit status."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    debug = settings.log_level == "DEBUG"
    configure_logging("replay", "DEBUG" if debug else "WARNING", settings.secrets)
    if not debug:  # a broker failure is reported in one line below, not per retry
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        fmt = OutputFormat(output)
        window = _window(since, until, at)
        if limit is not None and limit < 1:
            raise ValueError(f"--limit must be at least 1, got {limit}")
    except ValueError as exc:
        print(f"{_PROG}: {exc}", file=err)
        return 2
    started = time.perf_counter()
    try:
        result, summary = asyncio.run(_answer(settings, aliases, *window))
    except KafkaAccessError as exc:  # refused credentials or certificates
        print(f"{_PROG}: {exc}", file=err)
        return 2
    except StreamsError as exc:
        print(f"{_PROG}: {exc}", file=err)
        return 1
    rows = result.rows[:limit] if limit is not None else result.rows
    out.write(render(rows, result, fmt))
    elapsed = time.perf_counter() - started
    print(f"{_PROG}: {len(rows)} rows {summary}, in {elapsed:.2f} s", file=err)
    return 0


def _window(
    since: str | None, until: str | None, at: str | None
) -> tuple[datetime | None, datetime | None, datetime | None]:
    if at is not None and (since is not None or until is not None):
        raise ValueError(
            "--at gives the list at one moment: do not combine it with --since/--until"
        )
    start = parse_moment(since) if since is not None else None
    end = parse_moment(until) if until is not None else None
    if start is not None and end is not None and start > end:
        raise ValueError(f"--since ({since}) is later than --until ({until})")
    return start, end, parse_moment(at) if at is not None else None


async def _answer(
    settings: Settings,
    aliases: AliasTable | None,
    since: datetime | None,
    until: datetime | None,
    at: datetime | None,
) -> tuple[JoinResult, str]:
    """The list and the middle of the summary line."""
    topics = settings.topics
    await check_access(settings)
    async with HistoryReader(
        settings.kafka_bootstrap_servers,
        topics,
        aliases,
        fetch_wait_ms=settings.consumer_fetch_wait_ms,
        client_id=f"{settings.topic_prefix}-replay",
        client_options=kafka_client_options(settings),
    ) as reader:
        if at is not None:
            result = await reader.top_list_at(at)
            return result, f"as of {_iso(at)} from {_sources(result)}"
        replayed = await reader.replay(since, until)
    result = replayed.top_list
    return result, (
        f"from {_sources(result)}; {replayed.snapshots_read} snapshots read, "
        f"{replayed.generations} generations, {replayed.skipped} skipped"
    )


def _sources(result: JoinResult) -> str:
    meta = result.meta
    prices = (
        f"prices {meta.pricing_snapshot_id} ({_iso(meta.prices_fetched_at)})"
        if meta.pricing_snapshot_id is not None
        else "no prices"
    )
    return f"ranking {meta.ranking_snapshot_id} ({_iso(meta.ranking_fetched_at)}) and {prices}"


# --- output ------------------------------------------------------------------------------


def render(rows: Sequence[TopCoin], result: JoinResult, fmt: OutputFormat) -> str:
    """The printed list: JSON (``{"data": [...], "meta": {...}}``), CSV or a text table."""
    if fmt is OutputFormat.JSON:
        return json.dumps(_json_document(rows, result), ensure_ascii=False) + "\n"
    cells = [_cells(row) for row in rows]
    if fmt is OutputFormat.CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        text = {COLUMNS.index(name) for name in ("symbol", "name", "match_rule")}
        writer.writerows(
            [spreadsheet_safe(cell) if i in text else cell for i, cell in enumerate(line)]
            for line in cells
        )
        return buffer.getvalue()
    table = [list(COLUMNS), *cells]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    right = {0, 3, 4}  # numbers
    return "".join(
        "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ).rstrip()
        + "\n"
        for line in table
    )


def _cells(row: TopCoin) -> list[str]:
    return [
        str(row.rank),
        row.symbol,
        row.name,
        "" if row.cmc_id is None else str(row.cmc_id),
        "" if row.price_usd is None else _number(row.price_usd),
        row.match_rule,
    ]


def _json_document(rows: Sequence[TopCoin], result: JoinResult) -> dict[str, Any]:
    meta = result.meta
    return {
        "data": [
            {
                "rank": row.rank,
                "symbol": row.symbol,
                "name": row.name,
                "cmc_id": row.cmc_id,
                "price_usd": row.price_usd,
                "match_rule": row.match_rule,
            }
            for row in rows
        ],
        "meta": {
            "ranking_snapshot_id": meta.ranking_snapshot_id,
            "ranking_fetched_at": _iso(meta.ranking_fetched_at),
            "pricing_snapshot_id": meta.pricing_snapshot_id,
            "prices_fetched_at": _iso(meta.prices_fetched_at),
            "count": len(rows),
            "total_ranked": len(result.rows),
            "unmatched": meta.unmatched,
        },
    }


def _number(value: float) -> str:
    """Shortest round-trip decimal text, positional (``0.00001234``, not ``1.234e-05``)."""
    if not math.isfinite(value):
        return ""
    text = repr(float(value))
    return format(Decimal(text), "f") if "e" in text else text


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
