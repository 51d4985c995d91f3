"""``topcoins replay``: rebuild the joined list from the raw topics and print it.

    topcoins replay [--since ISO] [--until ISO | --at ISO] [--limit N]
                    [--format json|csv|table]

``--at`` prints the list as it was at that moment (``HistoryReader.top_list_at``: an
offset lookup, fast for any moment the raw topics retain). Otherwise every snapshot from
``--since`` (default: the oldest retained) to ``--until`` (default: now) is folded into
fresh state (``HistoryReader.replay``). Neither touches the running worker: the reader has
no consumer group and writes nothing.

The rows (rank, symbol, name, cmc_id, price_usd, match_rule) go to stdout, a one-line
summary to stderr. Times are ISO 8601 with an offset (``2026-11-27T12:00:00Z``,
``2026-11-27T13:00:00+01:00``), by the rule of ``GET /?at=``
(``topcoins.formats.parse_moment``): a time without an offset is refused.
Exit status: 0; 1 with a one-line reason when the history is not available or the broker
fails; 2 for bad arguments.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, TextIO

from topcoins.csv_cells import spreadsheet_safe
from topcoins.domain import AliasTable, DomainError, JoinResult
from topcoins.formats import format_number, iso_utc, parse_moment
from topcoins.history import HistoryError, HistoryReader
from topcoins.kafka_access import check_access
from topcoins.kafka_security import KafkaAccessError, kafka_client_options
from topcoins.logs import configure_logging
from topcoins.schemas.records import TopCoin
from topcoins.settings import Settings

__all__ = ["COLUMNS", "OutputFormat", "render", "run_replay"]

COLUMNS = ("rank", "symbol", "name", "cmc_id", "price_usd", "match_rule")
_PROG = "topcoins replay"


class OutputFormat(StrEnum):
    """How ``topcoins replay`` prints the list."""

    JSON = "json"
    CSV = "csv"
    TABLE = "table"


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
    except (HistoryError, DomainError) as exc:  # no such history, a broker failure, bad aliases
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
    start = parse_moment(since, "--since") if since is not None else None
    end = parse_moment(until, "--until") if until is not None else None
    if start is not None and end is not None and start > end:
        raise ValueError(f"--since ({since}) is later than --until ({until})")
    return start, end, parse_moment(at, "--at") if at is not None else None


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
            return result, f"as of {iso_utc(at)} from {_sources(result)}"
        replayed = await reader.replay(since, until)
    result = replayed.top_list
    return result, (
        f"from {_sources(result)}; {replayed.snapshots_read} snapshots read, "
        f"{replayed.generations} generations, {replayed.skipped} skipped"
    )


def _sources(result: JoinResult) -> str:
    meta = result.meta
    prices = (
        f"prices {meta.pricing_snapshot_id} ({iso_utc(meta.prices_fetched_at)})"
        if meta.pricing_snapshot_id is not None
        else "no prices"
    )
    return f"ranking {meta.ranking_snapshot_id} ({iso_utc(meta.ranking_fetched_at)}) and {prices}"


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
        "" if row.price_usd is None else format_number(row.price_usd),
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
            "ranking_fetched_at": iso_utc(meta.ranking_fetched_at),
            "pricing_snapshot_id": meta.pricing_snapshot_id,
            "prices_fetched_at": iso_utc(meta.prices_fetched_at),
            "count": len(rows),
            "total_ranked": len(result.rows),
            "unmatched": meta.unmatched,
        },
    }
