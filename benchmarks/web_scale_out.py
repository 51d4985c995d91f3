"""How do web processes add up? Requests/s of one process, then of two side by side.

Web replicas share nothing (each holds its own copy of the list), so behind a Kubernetes
Service, which spreads connections over them, their throughputs add up until the nodes'
cores run out. This script measures that on one machine: it starts ``--processes`` copies
of the real app (as ``benchmarks/web_hot_path.py`` does, served as ``topcoins web`` serves),
process i pinned to core i, and loads ``GET /?limit=200`` (JSON) on 1, then on all of them
at once, one ``wrk`` per process, in interleaved rounds. It prints the median total
requests/s for each count, the ratio to one process, and the servers' CPU time per request:
on a busy machine requests/s mostly measures the share of the CPU the servers got, while the
CPU time per request (1 / the requests/s of a core of its own) moves much less.

The load generators run on the cores left over; when there are none (two processes on a
two-core machine), they share the servers' cores and take CPU from them, so the figure for
all processes is a lower bound.

    python benchmarks/web_scale_out.py [--processes 2] [--seconds 5] [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys

from web_hot_path import (
    PATH,
    Target,
    cpu_seconds,
    free_port,
    python_server,
    wrk_command,
    wrk_requests,
    wrk_rps,
)


def load_all(
    targets: list[Target], args: argparse.Namespace, cores: list[int | None]
) -> tuple[float, float]:
    """Total requests/s of ``targets`` loaded at the same time, one ``wrk`` each, and the
    servers' CPU time per request (us)."""
    cpu_before = [cpu_seconds(target.pid) or 0.0 for target in targets]
    runs = [
        subprocess.Popen(
            wrk_command(target, "json", args.seconds, args.connections, core),
            stdout=subprocess.PIPE,
            text=True,
        )
        for target, core in zip(targets, cores, strict=True)
    ]
    total, requests = 0.0, 0
    for run in runs:
        out, _ = run.communicate(timeout=args.seconds + 30)
        if run.returncode != 0:
            raise RuntimeError(f"wrk failed ({run.returncode}):\n{out}")
        total += wrk_rps(out)
        requests += wrk_requests(out)
    cpu = sum((cpu_seconds(t.pid) or 0.0) - b for t, b in zip(targets, cpu_before, strict=True))
    return total, cpu / max(requests, 1) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64, help="per process")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("web_scale_out needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    pin = shutil.which("taskset") is not None and cores > 1
    server_cores = [i % cores if pin else None for i in range(args.processes)]
    spare = list(range(args.processes, cores)) if pin else []
    results: dict[int, list[tuple[float, float]]] = {1: [], args.processes: []}
    with contextlib.ExitStack() as stack:
        targets = []
        for core in server_cores:
            port = free_port()
            pid = stack.enter_context(python_server("app", port, core, None))
            targets.append(Target("app", port, {"json": PATH}, "", pid))
        single_load = [spare[0] if spare else (1 % cores if pin else None)]
        many_load = [spare[i] if i < len(spare) else None for i in range(args.processes)]
        load_all(targets[:1], argparse.Namespace(**{**vars(args), "seconds": 1}), single_load)
        for round_no in range(1, args.rounds + 1):
            for count, load_cores in [(1, single_load), (args.processes, many_load)]:
                rps, cpu = load_all(targets[:count], args, load_cores)
                results[count].append((rps, cpu))
                print(
                    f"round {round_no}: {count} process(es) {rps:9.0f} req/s, "
                    f"{cpu:6.1f} us server CPU/request",
                    flush=True,
                )
    one = statistics.median(rps for rps, _ in results[1])
    many = statistics.median(rps for rps, _ in results[args.processes])
    cpu_one = statistics.median(cpu for _, cpu in results[1])
    cpu_many = statistics.median(cpu for _, cpu in results[args.processes])
    where = "on spare cores" if len(spare) >= args.processes else "sharing the servers' cores"
    print(f"GET {PATH} JSON, {args.connections} connections per process, load {where}")
    print(
        f"1 process: {one:.0f} req/s (median of {args.rounds} rounds), {cpu_one:.1f} us CPU/request"
    )
    print(
        f"{args.processes} processes on {args.processes} cores: {many:.0f} req/s, "
        f"{many / one:.2f}x, {cpu_many:.1f} us CPU/request"
    )
    print(
        f"capacity from CPU time: {1e6 / cpu_one:.0f} req/s for a core of its own, "
        f"{args.processes * 1e6 / cpu_many:.0f} req/s for {args.processes} side by side"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
