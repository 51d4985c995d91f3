"""How do 1000 ``GET /stream`` clients on one web process fare?

A web process (the real ``create_app`` with a 200-asset ``StaticReplica``, served exactly as
``topcoins web`` serves: ``web.main.server_config``, uvloop and httptools) runs in a
subprocess. The script opens ``--streams`` concurrent streams to it (raw asyncio
connections that parse the chunked body, so the client costs little CPU), reads the
process' resident memory before and after, then the server publishes ``--generations``
new generations ``--interval`` seconds apart (a new snapshot pair and a changed price
each), logging the moment each one is the view ``GET /`` serves. The script prints:

* memory per stream: (RSS with every stream open and the first event sent - RSS before
  the first stream) / streams;
* per generation, the delay from it reaching ``GET /`` to the *last* stream receiving its
  whole event; median, p99 and max over the generations (target: p99 <= 100 ms for 1000
  streams with ``limit=200``).

Client and server run on the same machine and share its cores, so the delays include the
client's own work and are an upper bound.

    python benchmarks/stream_fanout.py [--streams 1000] [--generations 40] [--interval 0.5]
                                       [--limit 200] [--check]

``--check`` exits 1 when the p99 target is missed or a stream missed a generation. Only
loopback addresses are used; the server is stopped before the script returns.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from web_hot_path import HOST, bench_settings, free_port, running, wait_until_listening

TARGET_P99_MS = 100.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_rss_kib(pid: int) -> int:
    """The resident memory of process ``pid``, KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


# --- the server (a subprocess) -------------------------------------------------------


def serve(port: int, streams: int, generations: int, interval: float, log: Path) -> None:
    """Serve the app; once ``streams`` streams are open (and ``log`` says go), publish
    ``generations`` generations, appending ``{"id", "at"}`` for each to ``log``."""
    from web_hot_path import sample_view

    from tests.web.replicas import StaticReplica
    from topcoins.web.app import create_app
    from topcoins.web.main import _Server, server_config
    from topcoins.web.sse import generation_id
    from topcoins.web.version import BuildInfo

    settings = dataclasses.replace(bench_settings(port), web_stream_max=streams)
    replica = StaticReplica(sample_view())
    build = BuildInfo(version="bench", git_commit="unknown", build_time="unknown")
    app = create_app(settings, replica, build=build)
    hub = app.state.stream_hub
    server = _Server(server_config(app, settings), before_shutdown=hub.close)

    async def publish() -> None:
        go = log.with_suffix(".go")
        while not go.exists():
            await asyncio.sleep(0.05)
        with log.open("a") as out:
            for n in range(1, generations + 1):
                base = replica.view
                first = dataclasses.replace(base.entries[0], price_usd=60000.0 + n)
                view = dataclasses.replace(
                    base,
                    generation=base.generation + 1,
                    entries=(first, *base.entries[1:]),
                    ranking_snapshot_id=f"bench-r-{n}",
                    pricing_snapshot_id=f"bench-p-{n}",
                )
                replica.publish(view)
                at = time.time()  # GET / serves it from now on
                out.write(json.dumps({"id": generation_id(view), "at": at}) + "\n")
                out.flush()
                await asyncio.sleep(interval)

    async def main() -> None:
        publisher = asyncio.create_task(publish())
        try:
            await server.serve()
        finally:
            publisher.cancel()

    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(main())


# --- the clients (this process) --------------------------------------------------------


class Client(asyncio.BufferedProtocol):
    """One stream, as a bare buffered protocol (the client must cost the shared cores
    little: the kernel reads into one reused buffer and the bytes are never copied or
    scanned whole). Each event is one chunk, ``<size>\r\nid: <id>\ndata: <json>\n\n\r\n``:
    the id is read from the first bytes of a chunk and the event counts as arrived
    (``time.time()``) once the bytes read so far end with the chunk's closing ``\n\n\r\n``.
    A heartbeat comment is a chunk with no id and is ignored."""

    _END = b"\n\n\r\n"

    def __init__(self, limit: int) -> None:
        self.request = f"GET /stream?limit={limit} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
        self.arrivals: dict[str, float] = {}
        self.error: str | None = None
        self.opened = asyncio.get_running_loop().create_future()
        self._buffer = bytearray(1 << 18)
        self._view = memoryview(self._buffer)
        self._head = b""  # the first bytes of the chunk being read, until its id line is in
        self._event_id: str | None = None
        self._tail = b""  # the last bytes read, to see a chunk end split across reads

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        if not self.opened.done():
            status = bytes(self._view[:12])
            if status != b"HTTP/1.1 200":
                self._fail(status.decode(errors="replace"))
            self.opened.set_result(None)
            headers_end = self._buffer.find(b"\r\n\r\n", 0, nbytes)
            if headers_end < 0 or headers_end + 4 == nbytes:
                return
            self._consume(bytes(self._view[headers_end + 4 : nbytes]))
            return
        if self._event_id is None:
            self._consume(bytes(self._view[: min(nbytes, 256)]), bytes(self._view[:nbytes][-4:]))
        else:
            self._ended(bytes(self._view[:nbytes][-4:]))

    def _consume(self, first: bytes, last: bytes | None = None) -> None:
        """``first``: the read's first bytes (whole when short); ``last``: its last 4."""
        if self._event_id is None:
            self._head += first
            start = self._head.find(b"id: ")
            newline = self._head.find(b"\n", start) if start >= 0 else -1
            if newline >= 0:
                self._event_id = self._head[start + 4 : newline].decode()
                self._head = b""
        self._ended(first[-4:] if last is None else last)

    def _ended(self, last: bytes) -> None:
        self._tail = (self._tail + last)[-4:]
        if self._tail != self._END:
            return
        if self._event_id is not None:
            self.arrivals[self._event_id] = time.time()
        self._event_id, self._head, self._tail = None, b"", b""

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"the server closed the stream ({exc!r})")

    def _fail(self, error: str) -> None:
        self.error = self.error or error
        if not self.opened.done():
            self.opened.set_result(None)


async def measure(args: argparse.Namespace, port: int, pid: int, log: Path) -> dict[str, Any]:
    before_kib = vm_rss_kib(pid)
    loop = asyncio.get_running_loop()
    clients, transports = [], []
    for _ in range(args.streams):
        client = Client(args.limit)
        transport, _ = await loop.create_connection(lambda c=client: c, HOST, port)
        await asyncio.wait_for(client.opened, 10)
        clients.append(client)
        transports.append(transport)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(c.arrivals or c.error for c in clients):
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    open_kib = vm_rss_kib(pid)
    cpu_before = cpu_seconds(pid), time.process_time()
    log.with_suffix(".go").touch()
    wait = args.generations * args.interval + 10
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        published = _published(log)
        if len(published) == args.generations and all(
            c.error or all(i in c.arrivals for i in published) for c in clients
        ):
            break
        await asyncio.sleep(0.1)
    server_cpu = cpu_seconds(pid) - cpu_before[0]
    client_cpu = time.process_time() - cpu_before[1]
    for transport in transports:
        transport.close()
    published = _published(log)
    delays, missed = [], 0
    for generation_id, at in published.items():
        received = [c.arrivals.get(generation_id) for c in clients]
        missed += sum(1 for r in received if r is None)
        got = [r for r in received if r is not None]
        if got:
            delays.append((max(got) - at) * 1000)
    return {
        "streams": args.streams,
        "errors": sorted({c.error for c in clients if c.error}),
        "rss_before_mib": before_kib / 1024,
        "rss_open_mib": open_kib / 1024,
        "kib_per_stream": (open_kib - before_kib) / args.streams,
        "generations": len(published),
        "missed_deliveries": missed,
        "delays_ms": delays,
        "server_cpu_ms_per_generation": server_cpu * 1000 / max(1, len(published)),
        "client_cpu_ms_per_generation": client_cpu * 1000 / max(1, len(published)),
    }


def _fast_loop() -> Any:
    """uvloop's loop when it imports (the client then costs the shared cores less)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _published(log: Path) -> dict[str, float]:
    if not log.exists():
        return {}
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.endswith("}")]
    return {entry["id"]: entry["at"] for entry in entries}


def report(result: dict[str, Any], limit: int) -> list[str]:
    delays = sorted(result["delays_ms"])
    p99 = delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))] if delays else float("nan")
    result["p99_ms"] = p99
    lines = [
        f"streams: {result['streams']} (limit={limit}), errors: {result['errors'] or 'none'}",
        f"server RSS: {result['rss_before_mib']:.1f} MiB before, "
        f"{result['rss_open_mib']:.1f} MiB with every stream open "
        f"-> {result['kib_per_stream']:.1f} KiB per stream",
        f"generations: {result['generations']}, deliveries missed: {result['missed_deliveries']}",
        f"CPU per generation: server {result['server_cpu_ms_per_generation']:.1f} ms, "
        f"clients {result['client_cpu_ms_per_generation']:.1f} ms",
    ]
    if delays:
        lines.append(
            "GET / -> last stream: "
            f"median {statistics.median(delays):.1f} ms, p99 {p99:.1f} ms, "
            f"max {delays[-1]:.1f} ms (target p99 <= {TARGET_P99_MS:.0f} ms)"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--generations", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the server's port
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.streams, args.generations, args.interval, args.log)
        return 0
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "published.jsonl"
        command = [
            sys.executable, __file__, "--serve", str(port), "--log", str(log),
            "--streams", str(args.streams), "--generations", str(args.generations),
            "--interval", str(args.interval),
        ]  # fmt: skip
        with running(command) as server:
            wait_until_listening(port)
            with asyncio.Runner(loop_factory=_fast_loop()) as runner:
                result = runner.run(measure(args, port, server.pid, log))
    for line in report(result, args.limit):
        print(line)
    failed = result["errors"] or result["missed_deliveries"] or result["p99_ms"] > TARGET_P99_MS
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
