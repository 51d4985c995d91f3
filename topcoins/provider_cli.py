"""``topcoins cmc listings|quotes|key-info`` and ``topcoins cc toplist|rate-limit``.

One provider call from the command line, through the producers' own clients: the same
validation, the same retries (``PRODUCER_RETRY_ATTEMPTS``) and the same pacing and budget
accounting (CoinMarketCap's calls per minute and monthly credit ledger, CryptoCompare's
calls per second/minute/hour/day). Settings come from the environment like every other
command; ``--api-key`` replaces ``CMC_API_KEY`` / ``CRYPTOCOMPARE_API_KEY`` and goes through
the same settings parsing.

The answer goes to stdout (``--format table|json|csv``); a summary goes to stderr: the
calls made and, for CoinMarketCap, the credits used (the sum of ``status.credit_count``)
next to what topcoins' price list charged. Exit status: 0 on success, 1 when the provider
call failed after its retries, 2 for a refused or missing key (and for bad arguments or
settings). Every line printed is redacted: the key never appears.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from topcoins import redaction
from topcoins.formats import format_number, iso_utc
from topcoins.settings import ENV_DOCS, Settings

if TYPE_CHECKING:  # the producers (and httpx) are imported when a command runs
    import httpx

    from topcoins.producers.ratelimit import Wait

__all__ = ["EXIT_AUTH", "EXIT_FAILED", "EXIT_OK", "add_provider_commands", "run"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_AUTH = 2
# The longest a call waits for our own limits; a longer wait fails it without calling.
MAX_WAIT_SECONDS = 60.0
FORMATS = ("table", "json", "csv")

Cell = str | int | float | None


@dataclass
class Answer:
    """What a command prints: rows under ``columns`` on stdout, ``summary`` on stderr."""

    columns: tuple[str, ...]
    rows: list[tuple[Cell, ...]]
    summary: list[str] = field(default_factory=list)


@dataclass
class _CallCounter:
    """A pacer gate that never waits and counts the calls (and credits) sent."""

    calls: int = 0
    credits: int = 0

    def wait(self, credits: int, now: float) -> Wait:
        from topcoins.producers.ratelimit import NO_WAIT

        return NO_WAIT

    def record(self, credits: int, now: float) -> None:
        self.calls += 1
        self.credits += credits


# --- arguments -----------------------------------------------------------------------------


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {raw!r}")
    return value


def _ids(raw: str) -> list[int]:
    return [_positive(part.strip()) for part in raw.split(",") if part.strip()]


def _symbols(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _call_parser(
    calls: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    help: str,
    key_env: str,
    *,
    limit: bool = False,
) -> argparse.ArgumentParser:
    """The parser of one provider call: ``--api-key``, ``--format`` and, with ``limit``,
    ``--limit``."""
    parser = calls.add_parser(name, help=help)
    parser.add_argument(
        "--api-key", metavar="KEY", help=f"the provider API key (default: ${key_env})"
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )
    if limit:
        parser.add_argument(
            "--limit", type=_positive, default=10, metavar="N", help="how many (default: 10)"
        )
    return parser


def _symbols_filter(
    parser: argparse.ArgumentParser, help: str = "print only these symbols"
) -> None:
    parser.add_argument("--symbols", type=_symbols, metavar="SYM,...", help=help)


def add_provider_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``cmc`` and ``cc`` commands to the ``topcoins`` subcommand parser."""
    cmc_key, cc_key = ENV_DOCS["cmc_api_key"].name, ENV_DOCS["cryptocompare_api_key"].name
    cmc = sub.add_parser(
        "cmc",
        help="call CoinMarketCap once (listings, quotes, key-info) and print the answer",
        description="One CoinMarketCap call through the pricing producer's client: its "
        "validation, retries, pacing and credit ledger. Prints the answer on stdout and the "
        "credits used (status.credit_count) on stderr. Exit 2 when the key is refused.",
    )
    cmc_calls = cmc.add_subparsers(dest="provider_command", required=True, metavar="CALL")
    listings = _call_parser(
        cmc_calls, "listings", "the latest listings by market cap", cmc_key, limit=True
    )
    listings.add_argument(
        "--ids", type=_ids, metavar="ID,...", help="print only these CoinMarketCap ids (1,1027)"
    )
    _symbols_filter(listings, "print only these symbols (BTC,ETH)")
    quotes = _call_parser(
        cmc_calls, "quotes", "the latest USD quotes of CoinMarketCap ids", cmc_key
    )
    quotes.add_argument(
        "--ids", type=_ids, required=True, metavar="ID,...", help="CoinMarketCap ids (1,1027)"
    )
    _symbols_filter(quotes)
    _call_parser(cmc_calls, "key-info", "the key's plan and usage (costs no credit)", cmc_key)
    cmc.set_defaults(handler=_command, provider="coinmarketcap")

    cc = sub.add_parser(
        "cc",
        help="call CryptoCompare once (toplist, rate-limit) and print the answer",
        description="One CryptoCompare call through the ranking producer's client: its "
        "validation, retries and rate limits. Exit 2 when the key is refused.",
    )
    cc_calls = cc.add_subparsers(dest="provider_command", required=True, metavar="CALL")
    toplist = _call_parser(
        cc_calls, "toplist", "the assets ranked by 24h total volume in USD", cc_key, limit=True
    )
    _symbols_filter(toplist)
    _call_parser(cc_calls, "rate-limit", "calls made and left per window", cc_key)
    cc.set_defaults(handler=_command, provider="cryptocompare")


# --- running -------------------------------------------------------------------------------


def _command(args: argparse.Namespace) -> int:
    return run(args, os.environ, log_warnings=True)


def run(
    args: argparse.Namespace,
    env: Mapping[str, str],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    log_warnings: bool = False,
) -> int:
    """Run the parsed ``cmc``/``cc`` command; return the exit status.

    ``transport`` replaces the network (tests pass recorded answers or the emulator app);
    ``log_warnings`` routes the clients' warnings to stderr as redacted text lines (the
    ``topcoins`` command sets it; it replaces the process' log handlers). Raises
    ``SettingsError`` for a bad setting (the ``topcoins`` command exits 2).
    """
    from topcoins.producers.errors import AuthError, UpstreamError
    from topcoins.producers.ratelimit import WaitInterrupted

    out, err = stdout or sys.stdout, stderr or sys.stderr
    cmc = args.provider == "coinmarketcap"
    key_field = "cmc_api_key" if cmc else "cryptocompare_api_key"
    overrides = {ENV_DOCS[key_field].name: args.api_key} if args.api_key is not None else {}
    settings = Settings.from_env({**env, **overrides})
    secrets = tuple(settings.secrets)
    if log_warnings:
        from topcoins.logs import configure_logging

        configure_logging("topcoins", "WARNING", secrets, "text")
    name = f"topcoins {'cmc' if cmc else 'cc'} {args.provider_command}"

    def say(text: str) -> None:  # one line each, even when a provider's message has several
        print(" ".join(redaction.redact(text, secrets).split()), file=err, flush=True)

    if cmc and not settings.cmc_api_key:
        say(f"{name}: no CoinMarketCap API key: pass --api-key or set {ENV_DOCS[key_field].name}")
        return EXIT_AUTH
    execute = _cmc if cmc else _cc
    try:
        answer = asyncio.run(execute(args, settings, transport, say))
    except AuthError as exc:
        say(f"{name}: {exc}")
        return EXIT_AUTH
    except (UpstreamError, WaitInterrupted) as exc:
        say(f"{name}: {exc}")
        return EXIT_FAILED
    text = _render(answer, args.format)
    out.write(redaction.redact(text, secrets))
    out.flush()
    for line in answer.summary:
        say(line)
    return EXIT_OK


Say = Callable[[str], None]


async def _retrying(
    call: Callable[[], Awaitable[Any]], settings: Settings, provider: str, say: Say
) -> Any:
    from topcoins.producers.retry import RetryPolicy, with_retries

    def on_retry(error: Exception, retry: int, delay: float) -> None:
        say(f"{provider}: {error}; retry {retry} in {delay:.1f} s")

    policy = RetryPolicy(attempts=settings.producer_retry_attempts)
    return await with_retries(call, policy, on_retry=on_retry)


def _http(
    base_url: str, settings: Settings, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    import httpx

    return httpx.AsyncClient(
        base_url=base_url, timeout=settings.http_timeout_seconds, transport=transport
    )


async def _cmc(
    args: argparse.Namespace,
    settings: Settings,
    transport: httpx.AsyncBaseTransport | None,
    say: Say,
) -> Answer:
    from topcoins.producers.budget import BudgetError, CreditPlan, plan_pricing
    from topcoins.producers.coinmarketcap import PROVIDER, CoinMarketCapClient
    from topcoins.producers.errors import LocalLimitError
    from topcoins.producers.ratelimit import Pacer, SlidingWindowLimiter, Window

    command = args.provider_command
    try:
        budget = plan_pricing(
            CreditPlan(settings.cmc_monthly_credits, settings.cmc_calls_per_minute),
            depth=args.limit if command == "listings" else settings.pricing_depth,
            ranked=len(args.ids) if command == "quotes" else settings.ranking_depth,
            poll_seconds=settings.pricing_poll_seconds,
            full_listing_seconds=settings.pricing_full_listing_seconds,
            retry_attempts=settings.producer_retry_attempts,
        )
    except BudgetError as exc:
        raise LocalLimitError(f"{PROVIDER}: {exc}", provider=PROVIDER) from exc
    counter = _CallCounter()
    per_minute = SlidingWindowLimiter([Window("minute", 60.0, settings.cmc_calls_per_minute)])
    ledger = budget.ledger(time.monotonic())
    pacer = Pacer(PROVIDER, (per_minute, ledger, counter), max_wait=MAX_WAIT_SECONDS)
    async with _http(settings.cmc_base_url, settings, transport) as http:
        client = CoinMarketCapClient(http, settings.cmc_api_key, pacer=pacer)
        if command == "key-info":
            info = await _retrying(client.fetch_key_info, settings, PROVIDER, say)
            answer = _key_info_answer(info)
        elif command == "quotes":
            quotes = await _retrying(lambda: client.fetch_quotes(args.ids), settings, PROVIDER, say)
            answer = _quotes_answer(quotes, None, args.symbols)
        else:
            snapshot = await _retrying(
                lambda: client.fetch_listings(args.limit), settings, PROVIDER, say
            )
            answer = _quotes_answer(snapshot.quotes, args.ids, args.symbols)
    used = client.credits_used
    answer.summary.append(
        f"{PROVIDER}: {_plural(counter.calls, 'call')}, {_plural(used, 'credit')} used "
        f"(status.credit_count); {_plural(ledger.spent, 'credit')} charged to the "
        f"{settings.cmc_monthly_credits}-credit monthly budget"
    )
    return answer


async def _cc(
    args: argparse.Namespace,
    settings: Settings,
    transport: httpx.AsyncBaseTransport | None,
    say: Say,
) -> Answer:
    from topcoins.producers.cryptocompare import PROVIDER, CryptoCompareClient
    from topcoins.producers.ratelimit import Pacer, SlidingWindowLimiter, Window

    windows = (
        Window("second", 1.0, settings.cryptocompare_calls_per_second),
        Window("minute", 60.0, settings.cryptocompare_calls_per_minute),
        Window("hour", 3600.0, settings.cryptocompare_calls_per_hour),
        Window("day", 86400.0, settings.cryptocompare_calls_per_day),
    )
    counter = _CallCounter()
    pacer = Pacer(PROVIDER, (SlidingWindowLimiter(windows), counter), max_wait=MAX_WAIT_SECONDS)
    async with _http(settings.cryptocompare_base_url, settings, transport) as http:
        client = CryptoCompareClient(http, settings.cryptocompare_api_key, pacer=pacer)
        if args.provider_command == "rate-limit":
            usage = await _retrying(client.fetch_rate_limit, settings, PROVIDER, say)
            rows: list[tuple[Cell, ...]] = [
                (
                    window,
                    usage.calls_made.get(window),
                    usage.max_calls.get(window),
                    _left(usage.calls_made.get(window), usage.max_calls.get(window)),
                )
                for window in ("second", "minute", "hour", "day", "month")
                if window in usage.calls_made or window in usage.max_calls
            ]
            answer = Answer(("window", "calls_made", "max_calls", "calls_left"), rows)
        else:
            snapshot = await _retrying(
                lambda: client.fetch_ranking(args.limit), settings, PROVIDER, say
            )
            wanted = _wanted(args.symbols)
            # The provider may answer more than asked (CryptoCompare's smallest page is 10).
            rows = [
                (a.position, a.symbol, a.name, a.cc_id, a.volume_24h_usd)
                for a in snapshot.assets[: args.limit]
                if wanted is None or a.symbol.casefold() in wanted
            ]
            columns = ("position", "symbol", "name", "cc_id", "volume_24h_usd")
            answer = Answer(columns, rows)
            if snapshot.provider_total is not None:
                answer.summary.append(f"{PROVIDER}: {snapshot.provider_total} assets ranked")
    answer.summary.append(f"{PROVIDER}: {_plural(counter.calls, 'call')}")
    return answer


def _left(made: int | None, allowed: int | None) -> int | None:
    return None if made is None or allowed is None else max(0, allowed - made)


def _wanted(symbols: Sequence[str] | None) -> set[str] | None:
    return None if symbols is None else {symbol.casefold() for symbol in symbols}


def _quotes_answer(
    quotes: Sequence[Any], ids: Sequence[int] | None, symbols: Sequence[str] | None
) -> Answer:
    wanted = _wanted(symbols)
    rows: list[tuple[Cell, ...]] = [
        (
            q.cmc_rank,
            q.cmc_id,
            q.symbol,
            q.name,
            q.price_usd,
            q.volume_24h_usd,
            iso_utc(q.last_updated),
        )
        for q in quotes
        if (ids is None or q.cmc_id in ids) and (wanted is None or q.symbol.casefold() in wanted)
    ]
    columns = ("rank", "id", "symbol", "name", "price_usd", "volume_24h_usd", "last_updated")
    return Answer(columns, rows)


def _key_info_answer(info: Any) -> Answer:
    reset = iso_utc(info.credit_limit_monthly_reset_at)
    rows: list[tuple[Cell, ...]] = [
        (
            "minute",
            "requests",
            info.requests_made_minute,
            info.requests_left_minute,
            info.rate_limit_minute,
            None,
        ),
        ("day", "credits", info.credits_used_day, info.credits_left_day, None, None),
        (
            "month",
            "credits",
            info.credits_used_month,
            info.credits_left_month,
            info.credit_limit_monthly,
            reset,
        ),
    ]
    summary = [
        f"coinmarketcap plan: {info.credit_limit_monthly} credits a month"
        + (f" (resets {reset})" if reset else "")
        + (f", {info.rate_limit_minute} calls a minute" if info.rate_limit_minute else "")
    ]
    return Answer(("period", "counts", "used", "left", "limit", "resets_at"), rows, summary)


# --- output --------------------------------------------------------------------------------


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _text(cell: Cell) -> str:
    """A cell as text: numbers positional (``0.00001025``, never ``1.025e-05``)."""
    if cell is None:
        return ""
    if isinstance(cell, float):
        return format_number(cell)
    return str(cell)


def _render(answer: Answer, fmt: str) -> str:
    if fmt == "json":
        records = [dict(zip(answer.columns, row, strict=True)) for row in answer.rows]
        return json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(answer.columns)
        writer.writerows([_text(cell) for cell in row] for row in answer.rows)
        return buffer.getvalue()
    cells = [list(answer.columns), *([_text(cell) for cell in row] for row in answer.rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(answer.columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "".join(line.rstrip() + "\n" for line in lines)
