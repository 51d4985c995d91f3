"""The ``topcoins`` command: one subcommand per component, plus ``dev`` that runs them all."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence

from topcoins import __version__
from topcoins.provider_cli import add_provider_commands
from topcoins.settings import Component, Settings, SettingsError
from topcoins.usage import parser_help

__all__ = ["main"]

# Development-only commands and the module each runs: the Docker image leaves these modules
# out (scripts/runtime_wheel.py), so its ``topcoins`` offers only the other commands.
DEV_COMMANDS = {
    "emulator": "topcoins.emulator",
    "dev": "topcoins.dev",
    "broker": "topcoins.brokers",
}


def _installed(command: str) -> bool:
    return importlib.util.find_spec(DEV_COMMANDS[command]) is not None


def _settings(component: Component) -> Settings:
    return Settings.from_env(os.environ, component)


def _pricing(args: argparse.Namespace) -> int:
    from topcoins.producers.main import run_pricing

    return run_pricing(_settings("pricing"))


def _ranking(args: argparse.Namespace) -> int:
    from topcoins.producers.main import run_ranking

    return run_ranking(_settings("ranking"))


def _worker(args: argparse.Namespace) -> int:
    from topcoins.streams.main import run_worker

    return run_worker(_settings("worker"))


def _web(args: argparse.Namespace) -> int:
    from topcoins.web.main import run_web

    return run_web(_settings("web"))


def _replay(args: argparse.Namespace) -> int:
    from topcoins.streams.replay import run_replay

    return run_replay(
        _settings("replay"),
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

    settings = Settings.from_env(
        {"LOG_FORMAT": "text", **{k: v for k, v in os.environ.items() if v}}
    )
    configure_logging("dev", settings.log_level, settings.secrets, settings.log_format)
    return run_dev(os.environ, args.broker)


def _broker(args: argparse.Namespace) -> int:
    import signal
    import threading

    from topcoins.brokers import BrokerError, make_broker

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with make_broker(args.kind, args.port, secure=args.secure) as broker:
            print(f"{args.kind} broker listening at {broker.bootstrap_servers}", flush=True)
            if args.secure:
                _print_secure_settings(broker)
            stop.wait()
    except BrokerError as exc:
        print(f"topcoins broker: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_secure_settings(broker: object) -> None:
    """The client settings of a ``--secure`` broker's two listeners (a throw-away user)."""
    from topcoins.brokers import ApacheKafkaBroker

    assert isinstance(broker, ApacheKafkaBroker)
    for protocol, what in (("SASL_SSL", "SCRAM-SHA-512"), ("SSL", "client certificate")):
        print(f"# {protocol} listener ({what}):", flush=True)
        for name, value in broker.client_settings(protocol).items():
            print(f"{name}={value}", flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="topcoins",
        description="The top crypto assets by 24h volume, priced in USD. "
        "Settings come from environment variables (see the README).",
    )
    parser.add_argument("--version", action="version", version=f"topcoins {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: list[tuple[str, Callable[[argparse.Namespace], int]]] = [
        ("pricing", _pricing),
        ("ranking", _ranking),
        ("worker", _worker),
        ("web", _web),
    ]
    if _installed("emulator"):
        commands.append(("emulator", _emulator))
    for name, handler in commands:
        sub.add_parser(name, **parser_help(name)).set_defaults(handler=handler)
    if _installed("dev"):
        dev = sub.add_parser("dev", **parser_help("dev"))
        dev.add_argument(
            "--broker",
            choices=("tansu", "apache-kafka"),
            default="tansu",
            help="embedded broker to start when KAFKA_BOOTSTRAP_SERVERS is unset (default: tansu)",
        )
        dev.set_defaults(handler=_dev)
    replay = sub.add_parser("replay", **parser_help("replay"))
    replay.add_argument("--since", metavar="ISO", help="replay from this time (default: oldest)")
    moment = replay.add_mutually_exclusive_group()
    moment.add_argument("--until", metavar="ISO", help="replay up to this time (default: now)")
    moment.add_argument("--at", metavar="ISO", help="the list as it was at this time")
    replay.add_argument("--limit", type=int, metavar="N", help="print the first N rows")
    replay.add_argument(
        "--format",
        choices=("json", "csv", "table"),
        default="table",
        help="rows as aligned columns (table, the default), JSON or CSV",
    )
    replay.set_defaults(handler=_replay)
    if _installed("broker"):
        _add_broker(sub)
    add_provider_commands(sub)
    return parser


def _add_broker(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    broker = sub.add_parser("broker", help="run a local broker on loopback until Ctrl-C")
    broker.add_argument("kind", choices=("tansu", "apache-kafka"))
    broker.add_argument(
        "--port", type=int, default=9092, help="port it listens on, 127.0.0.1 (default: 9092)"
    )
    broker.add_argument(
        "--secure",
        action="store_true",
        help="apache-kafka only: add a SASL_SSL (SCRAM-SHA-512) and an SSL (client "
        "certificate) listener with a test CA, and print the settings a client needs",
    )
    broker.set_defaults(handler=_broker)


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
