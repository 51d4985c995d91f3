"""How fast is ``GET /`` compared with a bare ASGI app serving the same bytes?

Starts two uvicorn servers in turn on loopback ports, each in its own process:

* ``app``: the real ``create_app(settings, StaticReplica(view))`` with a 200-asset view;
* ``bare``: a ten-line ASGI app that sends the very same status, headers and body
  (fixed: it never recomputes the ages, which the real app does once a second).

Each is loaded for a bounded time with ``wrk`` (when installed) or a bounded number of
requests from a small keep-alive asyncio load generator, alternating rounds, and the
script prints requests/s for both and the ratio app/bare (the target is >= 0.90), from
each side's best round (noise from other processes only slows rounds down) and median.

    python benchmarks/web_hot_path.py [--seconds 5] [--rounds 3] [--connections 32]
                                      [--requests 20000] [--loadgen wrk|python]

Only loopback addresses are used; every server is stopped before the script returns.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

HOST = "127.0.0.1"
PATH = "/?limit=100"


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


def real_app() -> Any:
    from topcoins.settings import Settings
    from topcoins.web.app import create_app
    from topcoins.web.replica import StaticReplica
    from topcoins.web.version import BuildInfo

    build = BuildInfo(version="bench", git_commit="unknown", build_time="unknown")
    return create_app(Settings(), StaticReplica(sample_view()), build=build)


def bare_app() -> Any:
    from topcoins.settings import Settings
    from topcoins.web.freshness import StalenessPolicy
    from topcoins.web.params import Format
    from topcoins.web.rendered import RenderedView

    view = sample_view()
    freshness = StalenessPolicy(Settings()).evaluate(view, {}, int(time.time()) + 1)
    prepared = RenderedView(view).response(Format.JSON, 100, freshness)
    start = {"type": "http.response.start", "status": 200, "headers": prepared.headers}
    body = {"type": "http.response.body", "body": prepared.body}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send(start)
        await send(body)

    return app


def serve(kind: str, port: int) -> None:
    import uvicorn

    app = real_app() if kind == "app" else bare_app()
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


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


def run_wrk(port: int, seconds: int, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://{HOST}:{port}{PATH}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} error responses:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return float(match.group(1))


async def _python_load(port: int, requests: int, connections: int) -> float:
    request = f"GET {PATH} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while remaining > 0:
                remaining -= 1
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"unexpected answer: {head[:80]!r}")
                length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
                await reader.readexactly(length)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), 300)
    return requests / (time.perf_counter() - started)


def measure(kind: str, args: argparse.Namespace) -> float:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_until_listening(port)
        if args.loadgen == "wrk":
            run_wrk(port, 1, args.connections)  # warm-up
            return run_wrk(port, args.seconds, args.connections)
        asyncio.run(_python_load(port, min(2000, args.requests), args.connections))
        return asyncio.run(_python_load(port, args.requests, args.connections))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=["app", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per round")
    parser.add_argument("--requests", type=int, default=20000, help="python loadgen requests")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--loadgen", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python"
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    results: dict[str, list[float]] = {"bare": [], "app": []}
    for round_no in range(1, args.rounds + 1):
        for kind in ("bare", "app"):
            rps = measure(kind, args)
            results[kind].append(rps)
            print(f"round {round_no}: {kind:4s} {rps:9.0f} req/s", flush=True)
    # Other load on the machine only ever slows a round down, so the best round of each
    # side is the steadiest estimate; the median is printed as well.
    best_bare, best_app = max(results["bare"]), max(results["app"])
    med_bare, med_app = statistics.median(results["bare"]), statistics.median(results["app"])
    print(f"load generator: {args.loadgen}, {args.connections} connections, GET {PATH}")
    print(f"best   bare {best_bare:7.0f} req/s, app {best_app:7.0f} req/s")
    print(f"median bare {med_bare:7.0f} req/s, app {med_app:7.0f} req/s")
    print(f"ratio app/bare: best {best_app / best_bare:.3f}, median {med_app / med_bare:.3f}")
    print("target: >= 0.90")
    return 0


if __name__ == "__main__":
    sys.exit(main())
