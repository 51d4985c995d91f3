"""``topcoins cmc …`` / ``topcoins cc …`` as processes against the emulator as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from topcoins.brokers import free_port
from topcoins.redaction import secret_forms
from topcoins.settings import ENV_DOCS
from topcoins.supervisor import wait_http_ok

pytestmark = pytest.mark.e2e

CMC_KEY, CC_KEY = "emu-cmc-5f1e2d", "emu-cc-7a8b9c"
BAD_KEY = "wrong-key-s3cr3t42"


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """A ``topcoins emulator`` process that requires both keys."""
    port = free_port()
    env = {
        **os.environ,
        "EMULATOR_HOST": "127.0.0.1",
        "EMULATOR_PORT": str(port),
        "EMULATOR_CMC_API_KEY": CMC_KEY,
        "EMULATOR_CRYPTOCOMPARE_API_KEY": CC_KEY,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "topcoins", "emulator"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_http_ok(f"{url}/healthz", 30), "the emulator did not start within 30 s"
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def topcoins(emulator_url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    names = {spec.name for spec in ENV_DOCS.values()}
    env = {k: v for k, v in os.environ.items() if k not in names}
    env |= {"CMC_BASE_URL": emulator_url, "CRYPTOCOMPARE_BASE_URL": emulator_url}
    env |= {"CMC_API_KEY": CMC_KEY, "CRYPTOCOMPARE_API_KEY": CC_KEY}
    return subprocess.run(
        [sys.executable, "-m", "topcoins", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_listings_then_key_info_shows_the_credits_used(emulator_url):
    listings = topcoins(emulator_url, "cmc", "listings", "--limit", "300", "--format", "csv")
    assert listings.returncode == 0, listings.stderr
    assert len(listings.stdout.splitlines()) == 301
    assert "2 credits used (status.credit_count)" in listings.stderr
    info = topcoins(emulator_url, "cmc", "key-info", "--format", "json")
    assert info.returncode == 0, info.stderr
    month = next(row for row in json.loads(info.stdout) if row["period"] == "month")
    assert month["used"] >= 2 and month["used"] + month["left"] == month["limit"]


@pytest.mark.parametrize("argv", [("cmc", "key-info"), ("cc", "rate-limit")])
def test_a_refused_key_exits_2_with_one_line_and_no_trace_of_the_key(emulator_url, argv):
    result = topcoins(emulator_url, *argv, "--api-key", BAD_KEY)
    assert (result.returncode, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1
    assert "refused the API key" in result.stderr
    for form in secret_forms(BAD_KEY):
        assert form not in result.stderr
