"""The ``topcoins`` command: one subcommand per component, plus ``dev`` that runs them all."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from topcoins import __version__
from topcoins.settings import Settings, SettingsError

__all__ = ["main"]


def _settings() -> Settings:
    return Settings.from_env(os.environ)


def _pricing(args: argparse.Namespace) -> int:
    from topcoins.producers.main import run_pricing

    return run_pricing(_settings())


def _ranking(args: argparse.Namespace) -> int:
    from topcoins.producers.main import run_ranking

    return run_ranking(_settings())


def _worker(args: argparse.Namespace) -> int:
    from topcoins.streams.main import run_worker

    return run_worker(_settings())


def _web(args: argparse.Namespace) -> int:
    from topcoins.web.main import run_web

    return run_web(_settings())


def _replay(args: argparse.Namespace) -> int:
    from topcoins.streams.replay import run_replay

    return run_replay(
        _settings(),
        since=args.since,
        until=args.until,
        at=args.at,
        limit=args.limit,
        output=args.format,
    )


def _emulator(args: argparse.Namespace) -> int:
    from topcoins.emulator.app import EmulatorConfig
    from topcoins.emulator.main import run

    run(EmulatorConfig.from_env(os.environ))
    return 0


def _dev(args: argparse.Namespace) -> int:
    from topcoins.dev import run_dev
    from topcoins.logs import configure_logging

    configure_logging("dev", os.environ.get("LOG_LEVEL", "INFO").upper())
    return run_dev(os.environ, args.broker)


def _broker(args: argparse.Namespace) -> int:
    import signal
    import threading

    from topcoins.brokers import BrokerError, make_broker

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with make_broker(args.kind, args.port) as broker:
            print(f"{args.kind} broker listening at {broker.bootstrap_servers}", flush=True)
            stop.wait()
    except BrokerError as exc:
        print(f"topcoins broker: {exc}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="topcoins",
        description="The top crypto assets by 24h volume, priced in USD. "
        "Settings come from environment variables (see the README).",
    )
    parser.add_argument("--version", action="version", version=f"topcoins {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: list[tuple[str, str, Callable[[argparse.Namespace], int]]] = [
        ("pricing", "run the pricing producer (CoinMarketCap -> Kafka)", _pricing),
        ("ranking", "run the ranking producer (CryptoCompare -> Kafka)", _ranking),
        ("worker", "run the Faust stream worker (join -> table -> top topic)", _worker),
        ("web", "run the HTTP service", _web),
        ("emulator", "run the upstream emulator (both providers' APIs)", _emulator),
    ]
    for name, help_text, handler in commands:
        sub.add_parser(name, help=help_text).set_defaults(handler=handler)
    dev = sub.add_parser("dev", help="run everything: broker, emulator, producers, worker, web")
    dev.add_argument(
        "--broker",
        choices=("tansu", "apache-kafka"),
        default="tansu",
        help="embedded broker to start when KAFKA_BOOTSTRAP_SERVERS is unset (default: tansu)",
    )
    dev.set_defaults(handler=_dev)
    replay = sub.add_parser(
        "replay",
        help="rebuild the top list from the raw snapshot topics (worker untouched) and print it",
        description="Rebuild the joined list from the raw snapshot topics into fresh state "
        "and print it (rows on stdout, a summary on stderr). Times are ISO 8601 (UTC when "
        "no offset is given); the raw topics keep about 7 days.",
    )
    replay.add_argument("--since", metavar="ISO", help="replay from this time (default: oldest)")
    moment = replay.add_mutually_exclusive_group()
    moment.add_argument("--until", metavar="ISO", help="replay up to this time (default: now)")
    moment.add_argument("--at", metavar="ISO", help="the list as it was at this time")
    replay.add_argument("--limit", type=int, metavar="N", help="print the first N rows")
    replay.add_argument("--format", choices=("json", "csv", "table"), default="table")
    replay.set_defaults(handler=_replay)
    broker = sub.add_parser("broker", help="run a local broker on loopback until Ctrl-C")
    broker.add_argument("kind", choices=("tansu", "apache-kafka"))
    broker.add_argument("--port", type=int, default=9092)
    broker.set_defaults(handler=_broker)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``topcoins`` command."""
    args = _parser().parse_args(argv)
    try:
        code = args.handler(args)
    except SettingsError as exc:
        print(f"topcoins {args.command}: bad setting: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
