"""Does a flood of ``GET /?at=`` slow the live ``GET /`` down?

Starts (unless ``--bootstrap`` names one) an embedded Tansu broker, publishes ``--pairs``
ranking snapshots (200 assets) and price snapshots (1000 quotes) one minute apart into
fresh raw topics, and serves the real app (a static 200-asset live list, the real
history reader of those topics) with uvicorn in its own process. Then, from its own
process with a blocking keep-alive connection, it times live ``GET /?limit=100``:

* unloaded, for ``--seconds``;
* loaded, for ``--seconds`` while another process keeps ``--concurrency`` (200)
  concurrent ``at`` requests going, each for a moment no earlier request asked for: 200
  keep-alive clients that each ask again as soon as they have an answer, waiting
  ``Retry-After`` after a 503 (``--waves``: waves of 200 new connections, each wave as
  soon as the previous one is answered, ignoring ``Retry-After``). ``--control`` fires
  the same load at the live list instead, to show what that load costs by itself.

First it times single ``at`` requests on the idle server (``costs``). Then it prints
the live p50/p99 of both, the ratio loaded p99 / unloaded p99 (target: at most
2), what the ``at`` requests got (by status and error code) and the count of 5xx other
than the documented 503s (``history_busy``, ``history_timeout``, and uvicorn's own 503
past ``WEB_LIMIT_CONCURRENCY``). ``--offload inline|thread`` swaps the worker process for
the event loop or a thread (to compare); settings come from the environment
(``AT_MAX_WAITING=1000`` lifts the queue bound, ``AT_MAX_PER_SECOND=1e9`` the pace).

    python benchmarks/at_load.py [--seconds 10] [--concurrency 200] [--pairs 120]
                                 [--offload process|inline|thread] [--waves] [--control]
                                 [--bootstrap HOST:PORT]

Only loopback addresses are used; the server and the broker are stopped before it returns.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from web_hot_path import HOST, free_port, sample_view, stop, wait_until_listening

LIVE_PATH = "/?limit=100"
DOCUMENTED_503 = {"history_busy", "history_timeout", "uvicorn_limit"}
# --control: the waves ask for the live list instead (what the same bursts cost by themselves)
CONTROL = os.environ.get("AT_LOAD_CONTROL") == "1"


# --- data ------------------------------------------------------------------------------


async def publish_history(bootstrap: str, pairs: int) -> tuple[str, datetime]:
    """``pairs`` rankings and price snapshots, one minute apart, ending 10 minutes ago;
    returns the topic prefix and the first moment."""
    from aiokafka import AIOKafkaProducer

    from topcoins.kafka_admin import ensure_topics
    from topcoins.schemas import codec
    from topcoins.schemas.records import (
        PriceQuote,
        PriceSnapshot,
        RankedAsset,
        RankingSnapshot,
        utc_millis,
    )
    from topcoins.schemas.topics import Topics

    prefix = f"atload-{uuid.uuid4().hex[:8]}"
    topics = Topics.for_prefix(prefix)
    await ensure_topics(bootstrap, topics.all())
    start = utc_millis(datetime.now(UTC) - timedelta(minutes=pairs + 10))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for n in range(pairs):
            at = start + timedelta(minutes=n)
            assets = tuple(
                RankedAsset(i, f"S{(i * 3 + n) % 1000}", f"Coin {i}", str(i), 1e9 / i)
                for i in range(1, 201)
            )
            ranking = RankingSnapshot(f"r-{n}", at, 200, 5000, assets)
            quotes = tuple(
                PriceQuote(i, f"S{i}", f"Coin {i}", f"coin-{i}", i, 1.5 * i + n, 1e6, at)
                for i in range(1000)
            )
            prices = PriceSnapshot(f"p-{n}", at + timedelta(seconds=5), 5000, quotes)
            for topic, key, snapshot in (
                (topics.ranks.name, b"cryptocompare", ranking),
                (topics.prices.name, b"coinmarketcap", prices),
            ):
                await producer.send_and_wait(
                    topic,
                    codec.encode(snapshot),
                    key=key,
                    timestamp_ms=int(snapshot.fetched_at.timestamp() * 1000),
                    headers=[
                        ("snapshot_id", snapshot.snapshot_id.encode()),
                        ("schema", type(snapshot).__name__.encode()),
                    ],
                )
    finally:
        await producer.stop()
    return prefix, start


# --- server ----------------------------------------------------------------------------


def serve(port: int, bootstrap: str, prefix: str, offload: str) -> None:
    import uvicorn

    from tests.web.replicas import StaticReplica
    from topcoins.history import Offload
    from topcoins.settings import Settings
    from topcoins.web.app import create_app
    from topcoins.web.history import history_reader
    from topcoins.web.main import server_config
    from topcoins.web.version import BuildInfo

    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPIC_PREFIX": prefix}
    env |= {"WEB_HOST": HOST, "WEB_PORT": str(port), "LOG_LEVEL": "WARNING"}
    settings = Settings.from_env(env)
    build = BuildInfo(version="bench", git_commit="unknown", build_time="unknown")
    history = None
    if offload != "process":

        async def inline(function: Any, *args: Any) -> Any:
            return function(*args)

        async def thread(function: Any, *args: Any) -> Any:
            return await asyncio.to_thread(function, *args)

        chosen: Offload = inline if offload == "inline" else thread
        history = history_reader(settings, time.time, chosen)
        asyncio.run(history.start())  # opens no connection; it connects on first use
    app = create_app(settings, StaticReplica(sample_view()), build=build, history=history)
    uvicorn.Server(server_config(app, settings)).run()  # as `topcoins web` serves


# --- load ------------------------------------------------------------------------------


def probe_live(port: int, seconds: float) -> tuple[list[float], Counter[int]]:
    """Sequential live requests on one keep-alive connection: latencies (ms), statuses."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + seconds
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            connection.request("GET", LIVE_PATH)
            response = connection.getresponse()
            response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[response.status] += 1
            time.sleep(0.002)  # a steady trickle, not a second load generator
    finally:
        connection.close()
    return latencies, statuses


def costs(port: int, start: datetime, pairs: int) -> dict[str, list[float]]:
    """Latencies (ms) of single ``at`` requests on an otherwise idle server, by kind: the
    very first (the worker process starts, the reader connects), a moment of a snapshot
    pair not joined before, another moment of a pair just joined, and a settled moment
    asked again."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)

    def timed(moment: datetime) -> float:
        time.sleep(0.1)  # longer than the pace between two `at` starts (AT_MAX_PER_SECOND)
        at = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        started = time.perf_counter()
        connection.request("GET", f"/?limit=100&at={at}")
        response = connection.getresponse()
        response.read()
        assert response.status == 200, (response.status, at)
        return (time.perf_counter() - started) * 1000

    kinds: dict[str, list[float]] = {"first": [], "new pair": [], "same pair": [], "again": []}
    try:
        kinds["first"].append(timed(start + timedelta(seconds=20)))
        for pair in range(pairs // 4, min(pairs, pairs // 4 + 20)):
            moment = start + timedelta(minutes=pair, seconds=20)
            kinds["new pair"].append(timed(moment))
            kinds["same pair"].append(timed(moment + timedelta(seconds=20)))
            kinds["again"].append(timed(moment))
    finally:
        connection.close()
    return kinds


class Moments:
    """Distinct ``at`` values, spread over every published pair of snapshots."""

    def __init__(self, start: datetime, pairs: int, first: int = 0) -> None:
        self.start = start
        self.span_ms = pairs * 60_000
        self.sent = first

    def next(self) -> str:
        offset = (self.sent * 7919) % self.span_ms + self.sent // self.span_ms
        self.sent += 1
        moment = self.start + timedelta(milliseconds=offset + 6000)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def path(self) -> str:
        return LIVE_PATH if CONTROL else f"/?limit=100&at={self.next()}"


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, str, int]:
    """Status, error code (for 4xx/5xx) and Retry-After (0 if none) of one answer."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
    status = int(head.split(" ", 2)[1])
    headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    code = ""
    if status >= 400:
        try:
            code = json.loads(body).get("error", "")
        except ValueError:
            code = "uvicorn_limit" if b"Service Unavailable" in body else "not_json"
    return status, code, int(headers.get("retry-after", "0"))


async def _client(port: int, moments: Moments, deadline: float, outcomes: Counter[str]) -> None:
    """One keep-alive client: asks for a new moment as soon as it has an answer, and
    waits ``Retry-After`` after a 503, as a well-behaved client does."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while time.perf_counter() < deadline:
            writer.write(f"GET {moments.path()} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            try:
                status, code, retry_after = await _read_answer(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                outcomes["connection closed"] += 1  # uvicorn past limit_concurrency, ...
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
                continue
            outcomes[f"{status} {code}".strip()] += 1
            if retry_after:
                await asyncio.sleep(min(retry_after, max(0.0, deadline - time.perf_counter())))
    finally:
        writer.close()


async def _one_shot(port: int, path: str) -> tuple[int, str, int]:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        return await _read_answer(reader)
    finally:
        writer.close()


async def _waves(port: int, moments: Moments, deadline: float, concurrency: int) -> Counter[str]:
    """Waves of ``concurrency`` new connections, each wave once the last is answered,
    ignoring ``Retry-After``."""
    outcomes: Counter[str] = Counter()
    while time.perf_counter() < deadline:
        paths = [moments.path() for _ in range(concurrency)]
        answers = await asyncio.gather(*(_one_shot(port, p) for p in paths), return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException):
                outcomes[f"error {type(answer).__name__}"] += 1
            else:
                outcomes[f"{answer[0]} {answer[1]}".strip()] += 1
    return outcomes


async def _load(
    port: int,
    start: datetime,
    pairs: int,
    seconds: float,
    concurrency: int,
    waves: bool,
    first: int,
) -> Counter[str]:
    moments = Moments(start, pairs, first)
    deadline = time.perf_counter() + seconds
    if waves:
        return await _waves(port, moments, deadline, concurrency)
    outcomes: Counter[str] = Counter()
    await asyncio.gather(*(_client(port, moments, deadline, outcomes) for _ in range(concurrency)))
    return outcomes


def at_load(args: argparse.Namespace) -> None:
    begin = datetime.fromisoformat(args.start)
    outcomes = asyncio.run(
        _load(
            args.at_load, begin, args.pairs, args.seconds, args.concurrency, args.waves, args.first
        )
    )
    print(json.dumps(dict(outcomes)), flush=True)


# --- main ------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def loaded_phase(
    args: argparse.Namespace, port: int, start: datetime, first: int
) -> tuple[list[float], Counter[int], dict[str, int]]:
    """Live latencies and statuses while the load runs, and what the load got."""
    loader = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--at-load",
            str(port),
            "--start",
            start.isoformat(),
            "--first",
            str(first),
            "--pairs",
            str(args.pairs),
            "--seconds",
            str(args.seconds),
            "--concurrency",
            str(args.concurrency),
            *(["--waves"] if args.waves else []),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.3)  # let the load arrive
        loaded, statuses = probe_live(port, args.seconds)
        out, _ = loader.communicate(timeout=args.seconds + 120)
    finally:
        if loader.poll() is None:
            stop(loader, timeout_s=15)
    return loaded, statuses, json.loads(out.strip().splitlines()[-1])


def run(args: argparse.Namespace, bootstrap: str) -> int:
    prefix, start = asyncio.run(publish_history(bootstrap, args.pairs))
    port = free_port()
    serve_args = ["--serve", str(port), "--bootstrap", bootstrap, "--prefix", prefix]
    server = subprocess.Popen([sys.executable, __file__, *serve_args, "--offload", args.offload])
    load = "live" if args.control else "`at`"
    how = "in waves of new connections" if args.waves else "keep-alive, Retry-After honoured"
    print(
        f"offload: {args.offload}; load: {args.concurrency} concurrent {load} requests, {how}; "
        f"{args.pairs} snapshot pairs, {args.seconds:g} s per phase, {args.rounds} rounds"
    )
    ratios: list[float] = []
    undocumented = 0
    try:
        wait_until_listening(port, timeout=60)
        for kind, latencies in costs(port, start, args.pairs).items():
            print(
                f"single `at` requests, {kind}: n={len(latencies)} median "
                f"{statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms"
            )
        probe_live(port, 1.0)  # warm-up
        asyncio.run(_load(port, start, args.pairs, 0.5, 3, True, 0))  # connects the reader
        for round_no in range(1, args.rounds + 1):
            unloaded, unloaded_status = probe_live(port, args.seconds)
            loaded, loaded_status, outcomes = loaded_phase(args, port, start, round_no * 10**6)
            p99_unloaded, p99_loaded = percentile(unloaded, 0.99), percentile(loaded, 0.99)
            ratios.append(p99_loaded / p99_unloaded)
            undocumented += sum(
                count
                for key, count in outcomes.items()
                if key.startswith("5") and key.split(" ", 1)[-1] not in DOCUMENTED_503
            )
            undocumented += sum(n for status, n in loaded_status.items() if status >= 500)
            print(
                f"round {round_no}: live unloaded n={len(unloaded)} p50 "
                f"{percentile(unloaded, 0.5):.2f} ms p99 {p99_unloaded:.2f} ms; loaded "
                f"n={len(loaded)} p50 {percentile(loaded, 0.5):.2f} ms p99 {p99_loaded:.2f} ms; "
                f"ratio {ratios[-1]:.2f}; live statuses {dict(unloaded_status + loaded_status)}"
            )
            print(f"round {round_no}: {load} answers {outcomes}", flush=True)
    finally:
        stop(server, timeout_s=15)
    # Other load on the machine only ever inflates a phase, so the median is printed with
    # the best round.
    print(
        f"live p99 loaded/unloaded: median {statistics.median(ratios):.2f}, best "
        f"{min(ratios):.2f} (target: <= 2)"
    )
    print(f"5xx other than the documented 503: {undocumented}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--at-load", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--start", help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3, help="unloaded + loaded phase pairs")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=120, help="snapshot pairs published")
    parser.add_argument("--offload", choices=["process", "inline", "thread"], default="process")
    parser.add_argument("--bootstrap", help="a running broker (default: start Tansu)")
    parser.add_argument(
        "--waves",
        action="store_true",
        help="new connections in waves, ignoring Retry-After (default: keep-alive clients)",
    )
    parser.add_argument(
        "--control", action="store_true", help="fire the waves at the live list instead of `at`"
    )
    args = parser.parse_args()
    if args.control:
        os.environ["AT_LOAD_CONTROL"] = "1"  # read by the load process
    if args.serve:
        serve(args.serve, args.bootstrap, args.prefix, args.offload)
        return 0
    if args.at_load:
        at_load(args)
        return 0
    if args.bootstrap:
        return run(args, args.bootstrap)
    from topcoins.brokers import make_broker

    with make_broker("tansu") as broker:
        return run(args, broker.bootstrap_servers)


if __name__ == "__main__":
    sys.exit(main())
