"""A short run of each benchmark script: it starts, measures and prints its figures.

The figures themselves are not checked (CI machines vary); the scripts are, so the README's
numbers can always be reproduced.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import missing_tool

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"

pytestmark = pytest.mark.e2e


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=BENCHMARKS,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_avro_codec_prints_both_timings_of_identical_bytes() -> None:
    out = run("avro_codec.py", "--quotes", "300", "--repeat", "2")
    assert "identical in both" in out
    assert "encode: avro" in out
    assert "decode: avro" in out


def test_web_hot_path_compares_the_app_with_its_baselines() -> None:
    if shutil.which("wrk") is None:
        missing_tool("wrk", "apt-get install wrk (scripts/tools does)")
    out = run(
        "web_hot_path.py",
        "--seconds",
        "1",
        "--rounds",
        "1",
        "--warmup",
        "0",
        "--connections",
        "8",
    )
    for request in ("json", "csv", "304"):
        assert f"{request:4s} median req/s: bare" in out
    assert "app/bare" in out
    if shutil.which("nginx"):
        assert "app/nginx" in out


def test_web_scale_out_adds_up_two_processes() -> None:
    if shutil.which("wrk") is None:
        missing_tool("wrk", "apt-get install wrk (scripts/tools does)")
    out = run("web_scale_out.py", "--seconds", "1", "--rounds", "1", "--connections", "8")
    assert "1 process:" in out
    assert "2 processes on 2 cores:" in out


def test_freshness_measures_latency_stages_and_memory() -> None:
    out = run(
        "freshness.py",
        *("--sizes", "100", "--samples", "3", "--warmup", "0", "--no-memory-run"),
    )
    assert "freshness: provider answer received -> visible over HTTP" in out
    latency_row = next(line for line in out.splitlines() if line.split()[:3] == ["100", "100", "3"])
    assert len(latency_row.split()) == 8  # p50, p90, p99, max and the load average
    stages = ("producer parse", "producer publish", "worker decode", "worker write", "web apply")
    for stage in (*stages, "web render"):
        row = next(line for line in out.splitlines() if line.startswith(stage))
        assert float(row.split()[-1]) > 0, row  # the component's histogram was observed
    for process in ("emulator", "pricing", "ranking", "worker", "web"):
        assert any(line.split()[:1] == [process] for line in out.splitlines()), process
    assert "100 coins: p99" in out


def test_at_load_times_single_requests_and_the_live_list_under_load() -> None:
    out = run(
        "at_load.py",
        *("--seconds", "1", "--rounds", "1", "--pairs", "12", "--concurrency", "20"),
    )
    for kind in ("first", "new pair", "same pair", "again"):
        assert f"single `at` requests, {kind}: n=" in out
    assert "round 1: live unloaded" in out
    assert "live p99 loaded/unloaded: median" in out
    assert "5xx other than the documented 503: 0" in out
