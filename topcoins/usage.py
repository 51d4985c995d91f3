"""What each ``topcoins`` subcommand does, which variables it reads and which ports it opens.

The variables are the settings whose declaration (``topcoins.settings.ENV_DOCS``) names
the command, so a new setting shows in every help it belongs to; the emulator's
``EMULATOR_*`` variables come from ``EMULATOR_ENV``. ``epilog(command)`` is the text
after ``topcoins <command> --help``'s usage line.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from topcoins.settings import ENV_DOCS

__all__ = [
    "COMMANDS",
    "EMULATOR_CONTROL",
    "EMULATOR_ENV",
    "Command",
    "epilog",
    "parser_help",
    "variables",
]


@dataclass(frozen=True)
class Command:
    """One subcommand: a summary line, what it does, its ports."""

    summary: str
    description: str
    ports: str = ""
    defaults: Mapping[str, str] = field(default_factory=dict)  # where it differs from ENV_DOCS


COMMANDS: dict[str, Command] = {
    "pricing": Command(
        "run the pricing producer (CoinMarketCap -> Kafka)",
        "Polls CoinMarketCap (a full listing every PRICING_FULL_LISTING_SECONDS, the ranked "
        "assets' quotes in between), publishes each answer as one PriceSnapshot to "
        "<TOPIC_PREFIX>.prices.v1 and its health to <TOPIC_PREFIX>.status.v1. The credit "
        "plan may stretch PRICING_POLL_SECONDS: the effective interval is logged at start.",
        "PRICING_OPS_PORT on OPS_HOST: /healthz, /readyz, /metrics",
    ),
    "ranking": Command(
        "run the ranking producer (CryptoCompare -> Kafka)",
        "Polls CryptoCompare's top list by 24 h total volume, publishes each answer as one "
        "RankingSnapshot to <TOPIC_PREFIX>.ranks.v1 and its health to "
        "<TOPIC_PREFIX>.status.v1. The rate limits may stretch RANKING_POLL_SECONDS.",
        "RANKING_OPS_PORT on OPS_HOST: /healthz, /readyz, /metrics",
    ),
    "worker": Command(
        "run the Faust stream worker (join -> table -> top topic)",
        "Joins the latest ranking and price snapshots (Faust tables, local state in "
        "WORKER_DATA_DIR, rebuilt from Kafka when lost) and writes each generation of the "
        "list to the compacted <TOPIC_PREFIX>.top.v1.",
        "WORKER_OPS_PORT on OPS_HOST: /healthz, /readyz, /metrics",
    ),
    "web": Command(
        "run the HTTP service",
        "Keeps an in-memory replica of <TOPIC_PREFIX>.top.v1 and serves GET /?limit=N"
        "&format=json|csv&at=<time>, /status, /diagnostics, /healthz, /readyz, /metrics. "
        "A source is stale after STALE_AFTER_SECONDS, or 3 x its reported poll interval + "
        "HTTP_TIMEOUT_SECONDS.",
        "WEB_PORT on WEB_HOST (and WEB_OPS_PORT when set)",
    ),
    "emulator": Command(
        "run the upstream emulator (both providers' APIs)",
        "Serves CoinMarketCap's and CryptoCompare's endpoints in their real shapes (built "
        "from recorded answers), drifts prices and volumes every EMULATOR_TICK_SECONDS, and "
        "injects faults on request through its control API (below). It reads only the "
        "variables below, not the topcoins settings.",
    ),
    "dev": Command(
        "run everything: broker, emulator, producers, worker, web",
        "Runs the whole service on this machine: an embedded broker unless "
        "KAFKA_BOOTSTRAP_SERVERS is set, the emulator unless CMC_BASE_URL / "
        "CRYPTOCOMPARE_BASE_URL are set, both producers, the worker and the web service; "
        "prints where to look once the web service answers; Ctrl-C stops everything, the "
        "broker last. With the emulator it polls every 5 s (PRICING_POLL_SECONDS, "
        "RANKING_POLL_SECONDS) with its plan limits lifted. It binds 127.0.0.1 (WEB_HOST, "
        "OPS_HOST), logs text (LOG_FORMAT), keeps the worker's state in a temporary "
        "directory removed on exit (WORKER_DATA_DIR), refuses a busy WEB_PORT that is set "
        "and moves an unset one to a free port. Every other variable of the components "
        "(see their --help) is passed on to them.",
        "WEB_PORT (6667, or a free port when busy and unset), the emulator on 6668 (or a "
        "free port), the broker and the ops servers on free ports",
        {
            "PRICING_POLL_SECONDS": "5 (with the emulator)",
            "RANKING_POLL_SECONDS": "5 (with the emulator)",
            "WEB_HOST": "127.0.0.1",
            "OPS_HOST": "127.0.0.1",
            "WORKER_DATA_DIR": "a temporary directory",
            "LOG_FORMAT": "text",
        },
    ),
    "replay": Command(
        "rebuild the top list from the raw snapshot topics (worker untouched) and print it",
        "Rebuilds the joined list from the raw snapshot topics into fresh state and prints "
        "it (rows on stdout, a summary on stderr). Times are ISO 8601 with an offset "
        "(2026-11-27T12:00:00Z), as for GET /?at=; a time without one is refused. The raw "
        "topics keep RAW_RETENTION_HOURS (7 days by default).",
    ),
}

# The emulator's own variables: (name, EmulatorConfig field, meaning).
EMULATOR_ENV: tuple[tuple[str, str, str], ...] = (
    ("EMULATOR_HOST", "host", "Address it binds (`topcoins dev`: 127.0.0.1)."),
    ("EMULATOR_PORT", "port", "Port of both providers' APIs and of the control API."),
    ("EMULATOR_SEED", "seed", "Seed of the asset universe and of the drift."),
    ("EMULATOR_TICK_SECONDS", "tick_seconds", "Seconds between two drift steps (0 = none)."),
    ("EMULATOR_CC_RANKED", "cc_ranked", "How many assets CryptoCompare ranks."),
    ("EMULATOR_CMC_LISTED", "cmc_listed", "How many assets CoinMarketCap lists."),
    ("EMULATOR_CMC_API_KEY", "cmc_api_key", "Key CoinMarketCap calls must send (empty: any)."),
    (
        "EMULATOR_CRYPTOCOMPARE_API_KEY",
        "cryptocompare_api_key",
        "Key CryptoCompare calls must send (empty: none needed).",
    ),
    ("EMULATOR_LOG_LEVEL", "log_level", "Log level: DEBUG, INFO, WARNING or ERROR."),
    ("LOG_FORMAT", "log_format", "Log lines on stderr: json or text."),
)

EMULATOR_CONTROL = """\
control API (JSON bodies; errors are {"error", "detail"} with a 4xx status):
  GET  /_emulator/state                 ranking, prices, listings and active faults
  GET  /_emulator/faults                the active fault of each provider
  POST /_emulator/faults                set one: {"provider": "coinmarketcap" |
       "cryptocompare" | "both", "mode": "rate_limit" | "auth" | "server_error" |
       "timeout" | "slow" | "malformed" | "none", optional "count" (next N calls),
       "seconds" (for that long), "delay" (timeout/slow, s), "status" (500, 502, 503)};
       without count or seconds it lasts until replaced; mode "none" clears it
  POST /_emulator/assets/price          {"cmc_id": 1, "price_usd": 50000.0}
  POST /_emulator/assets/volume         {"symbol": "BTC", "volume_24h_usd": 1e9}
  POST /_emulator/pause | /resume       stop or restart the random drift
  POST /_emulator/tick?count=N          advance the drift by N steps now
  GET | DELETE /_emulator/calls         calls received per endpoint (DELETE resets)

make CoinMarketCap fail (HTTP 503 on every call), then restore it:
  curl -X POST 127.0.0.1:6668/_emulator/faults -d '{"provider": "coinmarketcap", "mode": "server_error", "status": 503}'
  curl -X POST 127.0.0.1:6668/_emulator/faults -d '{"provider": "coinmarketcap", "mode": "none"}'
"""  # noqa: E501


def variables(command: str) -> list[tuple[str, str, str]]:
    """(name, default, meaning) of every variable ``command`` reads, in table order."""
    if command == "emulator":
        from topcoins.emulator.config import EmulatorConfig

        defaults = EmulatorConfig()
        return [(name, str(getattr(defaults, field, "")), doc) for name, field, doc in EMULATOR_ENV]
    spec = COMMANDS[command]
    return [
        (env.name, spec.defaults.get(env.name, env.default), env.doc)
        for env in ENV_DOCS.values()
        if command in env.read_by
    ]


def _variables_text(rows: Iterable[tuple[str, str, str]]) -> str:
    lines = ["environment (default):"]
    for name, default, doc in rows:
        lines.append(f"  {name}={default}" if default else f"  {name} (empty)")
        lines += textwrap.wrap(doc, 86, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def parser_help(command: str) -> dict[str, Any]:
    """``add_parser`` keyword arguments: the summary, a wrapped description, the epilog."""
    spec = COMMANDS[command]
    return {
        "help": spec.summary,
        "description": textwrap.fill(spec.description, 88),
        "epilog": epilog(command),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


def epilog(command: str) -> str:
    """The help text after the usage line: ports, variables (and the emulator's API)."""
    parts = []
    if command == "emulator":
        parts += ["ports: EMULATOR_PORT on EMULATOR_HOST", EMULATOR_CONTROL]
    elif COMMANDS[command].ports:
        parts.append(textwrap.fill(f"ports: {COMMANDS[command].ports}", 88))
    parts.append(_variables_text(variables(command)))
    return "\n\n".join(parts)
