"""How fast is ``GET /`` next to a bare ASGI app and nginx serving the same bytes?

Three servers, each pinned to one core (``--server-core``), run side by side; the load
generator is pinned to another (``--load-core``), so a server never competes with it:

* ``app``: the real ``create_app(settings, StaticReplica(view))`` with a 200-asset view,
  served exactly as ``topcoins web`` serves (``web.main.server_config``: uvicorn with
  uvloop and httptools);
* ``bare``: a few-line ASGI app on that same uvicorn configuration that sends the bytes the
  app answered (status, headers, body), choosing by query string and ``If-None-Match``;
* ``nginx`` (when installed): nginx serving the same bodies as static files, one worker.

Three requests are measured: ``GET /?limit=200`` JSON (the targets: app >= 0.90 x bare and
>= 0.45 x nginx), the same as CSV, and a JSON revalidation with ``If-None-Match`` (304).
Each round loads every (request, server) pair in turn with ``wrk`` (when installed; else a
small keep-alive asyncio load generator) for ``--seconds``; the script prints the median
requests/s of each pair over the rounds and the ratios of the medians. On a shared machine
other processes only slow rounds down, so it also prints each pair's best round.

    python benchmarks/web_hot_path.py [--seconds 5] [--rounds 5] [--connections 64]
                                      [--loadgen wrk|python] [--check]

``--check`` exits 1 when a JSON target is missed. Only loopback addresses are used; every
server is stopped before the script returns.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
PATH = "/?limit=200"
CSV_PATH = "/?limit=200&format=csv"
# The data never turns stale during a run, so the ETag (and the 304) stays the same.
BENCH_ENV = {"STALE_AFTER_SECONDS": "86400"}
TARGETS = {"bare": 0.90, "nginx": 0.45}
# uvicorn adds these itself; urllib asked for "connection: close"
NOT_REPLAYED = {"date", "server", "connection"}
# The app serves its view with the tests' StaticReplica (tests/web/replicas.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def sample_view() -> Any:
    """A realistic 200-asset view built through the real builder."""
    from topcoins.schemas.codec import encode
    from topcoins.schemas.records import TopCoin, TopListMeta
    from topcoins.web.view import TopListBuilder

    fetched = datetime.now(UTC)  # fresh data, as in production
    builder = TopListBuilder()
    symbols = []
    for i in range(200):
        symbol = f"C{i:03d}"
        symbols.append(symbol)
        price = None if i % 17 == 0 else round(60000.0 / (i + 1) ** 1.7, 8)
        row = TopCoin(
            rank=i + 1,
            symbol=symbol,
            name=f"Coin number {i}",
            cmc_id=None if price is None else 1000 + i,
            price_usd=price,
            match_rule="unmatched" if price is None else "symbol",
            volume_24h_usd=1e10 / (i + 1),
            rank_fetched_at=fetched,
            price_fetched_at=fetched - timedelta(seconds=30),
            ranking_snapshot_id="r-1",
            pricing_snapshot_id="p-1",
        )
        builder.apply(symbol.encode(), encode(row))
    meta = TopListMeta(
        symbols=tuple(symbols),
        ranking_snapshot_id="r-1",
        ranking_fetched_at=fetched,
        pricing_snapshot_id="p-1",
        prices_fetched_at=fetched - timedelta(seconds=30),
        provider_total=5000,
        depth=200,
        unmatched=12,
    )
    view = builder.apply(b"_meta", encode(meta))
    assert view is not None
    return view


def bench_settings(port: int) -> Any:
    from topcoins.settings import Settings

    return Settings.from_env({**BENCH_ENV, "WEB_HOST": HOST, "WEB_PORT": str(port)})


def real_app(settings: Any = None) -> Any:
    from tests.web.replicas import StaticReplica
    from topcoins.web.app import create_app
    from topcoins.web.version import BuildInfo

    build = BuildInfo(version="bench", git_commit="unknown", build_time="unknown")
    settings = settings if settings is not None else bench_settings(6667)
    return create_app(settings, StaticReplica(sample_view()), build=build)


def bare_app(answers_file: Path) -> Any:
    """An ASGI app that replays the recorded answers: by query string, 304 on a match."""
    recorded = json.loads(answers_file.read_text())
    answers: dict[bytes, tuple[dict[str, Any], dict[str, Any]]] = {}
    not_modified: dict[bytes, tuple[bytes, dict[str, Any]]] = {}
    for answer in recorded:
        query = answer["query"].encode()
        headers = [(k.encode(), v.encode()) for k, v in answer["headers"]]
        start = {"type": "http.response.start", "status": answer["status"], "headers": headers}
        body = {"type": "http.response.body", "body": answer["body"].encode()}
        if answer["status"] == 304:
            not_modified[query] = (answer["etag"].encode(), start)
        else:
            answers[query] = (start, body)
    empty = {"type": "http.response.body", "body": b""}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        query = scope["query_string"]
        revalidation = not_modified.get(query)
        if revalidation is not None:
            for name, value in scope["headers"]:
                if name == b"if-none-match" and value == revalidation[0]:
                    await send(revalidation[1])
                    await send(empty)
                    return
        start, body = answers[query]
        await send(start)
        await send(body)

    return app


def serve(kind: str, port: int, answers_file: Path | None) -> None:
    import uvicorn

    from topcoins.web.main import server_config

    settings = bench_settings(port)
    app = real_app(settings) if kind == "app" else bare_app(answers_file)  # type: ignore[arg-type]
    config = server_config(app, settings)
    if os.environ.get("BENCH_STACK") == "asyncio-h11":  # --stack: uvicorn's pure-Python stack
        config.loop, config.http = "asyncio", "h11"
    uvicorn.Server(config).run()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_until_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {HOST}:{port} within {timeout} s")


def pinned(core: int | None) -> list[str]:
    """The ``taskset`` prefix that runs a command on ``core`` (nothing when not pinning)."""
    return [] if core is None else ["taskset", "-c", str(core)]


def fetch(port: int, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """One request; its status, headers and body (304 included)."""
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, head, body = response.status, response.getheaders(), response.read()
    except urllib.error.HTTPError as error:  # urllib raises on 304
        status, head, body = error.code, error.headers.items(), error.read()
    return {"status": status, "headers": head, "body": body.decode()}


@dataclass(frozen=True)
class Target:
    """One server under test and how to ask it each request."""

    kind: str
    port: int
    paths: dict[str, str]  # request name -> path
    etag: str
    pid: int = 0  # the server process (its children count too: nginx's worker)


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) used so far by ``pid`` and its children; None without /proc."""
    total = 0.0
    try:
        stats = [Path(f"/proc/{pid}/stat").read_text()]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    stat = (entry / "stat").read_text()
                    if stat.rsplit(")", 1)[1].split()[1] == str(pid):
                        stats.append(stat)
    except OSError:
        return None
    for stat in stats:
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@contextlib.contextmanager
def python_server(kind: str, port: int, core: int | None, answers: Path | None) -> Iterator[int]:
    """Serve ``kind`` on ``port`` in a process of its own; yields its pid."""
    command = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
    if answers is not None:
        command += ["--answers", str(answers)]
    with running([*pinned(core), *command]) as process:
        wait_until_listening(port)
        yield process.pid


@contextlib.contextmanager
def running(command: Sequence[str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[Any], timeout_s: float = 10) -> None:
    """Terminate ``process``; kill it if it is still running after ``timeout_s``."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {root}/tmp; proxy_temp_path {root}/tmp; fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp; scgi_temp_path {root}/tmp;
    types {{ application/json json; text/csv csv; }}
    server {{ listen {host}:{port}; root {root}/www; }}
}}
"""


@contextlib.contextmanager
def nginx_server(port: int, core: int | None, bodies: dict[str, str], root: Path) -> Iterator[int]:
    """nginx serving ``bodies`` (file name -> text) as static files from ``root/www``."""
    (root / "www").mkdir(parents=True)
    (root / "tmp").mkdir()
    for name, text in bodies.items():
        (root / "www" / name).write_text(text)
    for path in [root, root / "www", *(root / "www").iterdir()]:
        path.chmod(0o755)  # the worker runs as an unprivileged user when started as root
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(root=root, host=HOST, port=port))
    with running([*pinned(core), "nginx", "-p", str(root), "-c", str(conf)]) as process:
        wait_until_listening(port)
        yield process.pid


def wrk_command(
    target: Target, path: str, seconds: int, connections: int, core: int | None
) -> list[str]:
    """The ``wrk`` command line that loads ``target`` with request ``path``."""
    headers = ["-H", f"If-None-Match: {target.etag}"] if path == "304" else []
    url = f"http://{HOST}:{target.port}{target.paths[path]}"
    return [*pinned(core), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *headers, url]


def wrk_requests(out: str) -> int:
    """How many requests ``wrk`` completed."""
    match = re.search(r"(\d+) requests in", out)
    if match is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return int(match.group(1))


def wrk_rps(out: str) -> float:
    """Requests per second from ``wrk``'s output; any non-2xx/3xx answer is an error."""
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} error responses:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return float(match.group(1))


def run_wrk(
    target: Target, path: str, seconds: int, connections: int, core: int | None
) -> tuple[float, int]:
    """Requests per second and requests done."""
    command = wrk_command(target, path, seconds, connections, core)
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    return wrk_rps(out), wrk_requests(out)


async def _python_load(
    target: Target, path: str, seconds: float, connections: int
) -> tuple[float, int]:
    extra = f"If-None-Match: {target.etag}\r\n" if path == "304" else ""
    request = f"GET {target.paths[path]} HTTP/1.1\r\nHost: {HOST}\r\n{extra}\r\n".encode()
    expected = b"HTTP/1.1 304" if path == "304" else b"HTTP/1.1 200"
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(HOST, target.port)
        try:
            while time.perf_counter() < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(expected):
                    raise RuntimeError(f"unexpected answer: {head[:80]!r}")
                length = re.search(rb"content-length: *(\d+)", head, re.I)
                await reader.readexactly(int(length.group(1)) if length else 0)
                done += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), seconds + 60)
    return done / (time.perf_counter() - started), done


def load(target: Target, path: str, args: argparse.Namespace) -> tuple[float, float | None]:
    """Requests per second ``target`` answers to ``path`` during ``args.seconds``, and the
    server's CPU time per request in microseconds (None where it cannot be read)."""
    expected = 304 if path == "304" else 200
    headers = {"If-None-Match": target.etag} if path == "304" else {}
    before = fetch(target.port, target.paths[path], headers)["status"]
    cpu_before = cpu_seconds(target.pid)
    if args.loadgen == "wrk":
        rps, done = run_wrk(target, path, args.seconds, args.connections, args.load_core)
    else:
        rps, done = asyncio.run(_python_load(target, path, args.seconds, args.connections))
    cpu_after = cpu_seconds(target.pid)
    cpu = None
    if cpu_before is not None and cpu_after is not None and done:
        cpu = (cpu_after - cpu_before) / done * 1e6
    after = fetch(target.port, target.paths[path], headers)["status"]
    if before != expected or after != expected:
        raise RuntimeError(f"{target.kind} {path}: status {before}/{after}, expected {expected}")
    return rps, cpu


def record_answers(port: int, answers_file: Path) -> dict[str, str]:
    """The app's answers to each request, for the bare app; returns the bodies by name."""
    json_answer, csv_answer = fetch(port, PATH), fetch(port, CSV_PATH)
    etag = dict((k.lower(), v) for k, v in json_answer["headers"])["etag"]
    not_modified = fetch(port, PATH, {"If-None-Match": etag})
    statuses = [json_answer["status"], csv_answer["status"], not_modified["status"]]
    if statuses != [200, 200, 304]:
        raise RuntimeError(f"the app answered {statuses} to JSON, CSV, revalidation")
    recorded = []
    for path, answer in [(PATH, json_answer), (CSV_PATH, csv_answer), (PATH, not_modified)]:
        headers = [(k.lower(), v) for k, v in answer["headers"] if k.lower() not in NOT_REPLAYED]
        query = path.split("?", 1)[1]
        recorded.append({**answer, "headers": headers, "query": query, "etag": etag})
    answers_file.write_text(json.dumps(recorded))
    return {"top.json": json_answer["body"], "top.csv": csv_answer["body"], "etag": etag}


Results = dict[tuple[str, str], list[tuple[float, float | None]]]


def measure(args: argparse.Namespace) -> Results:
    """Every round of every (request, server) pair: requests/s, server CPU us/request."""
    requests = args.requests.split(",")
    results: Results = {}
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="topcoins-bench-")))
        root.chmod(0o755)  # nginx's worker reads below it
        app_port, bare_port, nginx_port = free_port(), free_port(), free_port()
        app_pid = stack.enter_context(python_server("app", app_port, args.server_core, None))
        answers = root / "answers.json"
        bodies = record_answers(app_port, answers)
        paths = {"json": PATH, "csv": CSV_PATH, "304": PATH}
        targets = [
            Target("app", app_port, paths, bodies["etag"], app_pid),
        ]
        bare_pid = stack.enter_context(python_server("bare", bare_port, args.server_core, answers))
        targets.insert(0, Target("bare", bare_port, paths, bodies["etag"], bare_pid))
        if shutil.which("nginx") and not args.no_nginx:
            www = {"top.json": bodies["top.json"], "top.csv": bodies["top.csv"]}
            nginx_pid = stack.enter_context(
                nginx_server(nginx_port, args.server_core, www, root / "nginx")
            )
            etag = dict((k.lower(), v) for k, v in fetch(nginx_port, "/top.json")["headers"])
            nginx_paths = {"json": "/top.json", "csv": "/top.csv", "304": "/top.json"}
            targets.append(Target("nginx", nginx_port, nginx_paths, etag["etag"], nginx_pid))
        print(f"JSON body {len(bodies['top.json'])} bytes, CSV body {len(bodies['top.csv'])} bytes")
        for request in requests if args.warmup else []:
            for target in targets:
                warmup = argparse.Namespace(**{**vars(args), "seconds": args.warmup})
                load(target, request, warmup)
        for round_no in range(1, args.rounds + 1):
            for request in requests:
                for target in targets:
                    rps, cpu = load(target, request, args)
                    results.setdefault((request, target.kind), []).append((rps, cpu))
                    per_request = f", {cpu:6.1f} us CPU/request" if cpu is not None else ""
                    print(
                        f"round {round_no}: {request:4s} {target.kind:5s} {rps:9.0f} req/s"
                        f"{per_request}",
                        flush=True,
                    )
    return results


def report(results: Results) -> list[str]:
    """Medians per pair, the app's ratios, and the misses of the JSON targets.

    Requests/s is what the targets are about. The server CPU time per request is printed
    too: on a busy machine it moves much less than requests/s, and on a core of its own a
    server's requests/s is 1 / (CPU time per request).
    """
    misses = []
    for request in dict.fromkeys(request for request, _ in results):
        runs = {kind: v for (r, kind), v in results.items() if r == request}
        rps = {kind: statistics.median(x for x, _ in v) for kind, v in runs.items()}
        cpus = {kind: [c for _, c in v if c] for kind, v in runs.items()}
        cpu = {kind: statistics.median(v) for kind, v in cpus.items() if v}
        best = max(x for x, _ in runs["app"])
        print(f"{request:4s} median req/s: " + ", ".join(f"{k} {v:.0f}" for k, v in rps.items()))
        if cpu:
            line = ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
            print(f"     median server CPU us/request: {line}")
        for kind, target in TARGETS.items():
            if kind not in rps:
                continue
            ratio = rps["app"] / rps[kind]
            goal = f" (target >= {target:.2f})" if request == "json" else ""
            by_cpu = (
                f", by CPU/request {cpu[kind] / cpu['app']:.3f}" if len(cpu) == len(rps) else ""
            )
            print(f"     app/{kind}: req/s {ratio:.3f}{goal}{by_cpu}")
            if request == "json" and ratio < target:
                misses.append(f"json app/{kind} {ratio:.3f} < {target:.2f}")
        print(f"     app best round: {best:.0f} req/s")
    return misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=["app", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--answers", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=int, default=5, help="load time per pair and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="seconds per pair first; 0: none")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-core", type=int, default=0, help="-1: do not pin")
    parser.add_argument("--load-core", type=int, default=1, help="-1: do not pin")
    parser.add_argument("--requests", default="json,csv,304", help="which ones, comma-separated")
    parser.add_argument(
        "--stack",
        choices=["fastest", "asyncio-h11"],
        default="fastest",
        help="asyncio-h11: serve app and bare on asyncio's loop and h11, for comparison",
    )
    parser.add_argument("--no-nginx", action="store_true", help="skip nginx even if installed")
    parser.add_argument("--check", action="store_true", help="exit 1 when a JSON target is missed")
    parser.add_argument(
        "--loadgen", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python"
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.answers)
        return 0
    can_pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) > 1
    args.server_core = args.server_core if can_pin and args.server_core >= 0 else None
    args.load_core = args.load_core if can_pin and args.load_core >= 0 else None
    os.environ["BENCH_STACK"] = args.stack
    results = measure(args)
    print(
        f"load generator: {args.loadgen}, {args.connections} connections, {args.seconds} s x "
        f"{args.rounds} rounds; servers on core {args.server_core}, load on {args.load_core}"
    )
    misses = report(results)
    for miss in misses:
        print(f"MISSED: {miss}")
    return 1 if misses and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
