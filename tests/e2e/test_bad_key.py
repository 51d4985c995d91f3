"""A bad API key stops a producer at start: exit status 2, one line naming the variable,
and the key in no form on stdout or stderr. A key with whitespace around it is stripped
and used, and never shown either."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from topcoins.redaction import secret_forms
from topcoins.settings import ENV_DOCS

pytestmark = pytest.mark.e2e

START_DEADLINE_SECONDS = 10.0  # measured: about 0.5 s each
ACCEPTED_AFTER_SECONDS = 2.0


def _clean_env() -> dict[str, str]:
    """This environment without any topcoins setting a developer may have set."""
    names = {spec.name for spec in ENV_DOCS.values()}
    return {k: v for k, v in os.environ.items() if k not in names}


@pytest.mark.parametrize(
    ("command", "variable"),
    [("pricing", "CMC_API_KEY"), ("ranking", "CRYPTOCOMPARE_API_KEY")],
)
@pytest.mark.parametrize(
    ("key", "parts"),
    [("s3cr3tAB\ndef9", ("s3cr3tAB", "def9")), ("k\u00e9y-s3cr3tCD", ("s3cr3tCD",))],
)
def test_a_key_a_header_cannot_carry_exits_2_with_a_reason_and_no_trace(
    command, variable, key, parts
):
    env = {
        **_clean_env(),
        variable: key,
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",  # never reached: the key stops it first
    }
    done = subprocess.run(
        [sys.executable, "-m", "topcoins", command],
        env=env,
        capture_output=True,
        timeout=START_DEADLINE_SECONDS,
        check=False,
    )
    stdout, stderr = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    assert done.returncode == 2, stderr[-500:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert variable in lines[0] and "API key" in lines[0]
    output = stdout + stderr
    for shown in (*secret_forms(key), *parts):
        assert shown not in output, shown


@pytest.mark.parametrize(
    ("command", "component", "variable"),
    [
        ("pricing", "pricing-producer", "CMC_API_KEY"),
        ("ranking", "ranking-producer", "CRYPTOCOMPARE_API_KEY"),
    ],
)
def test_a_key_with_a_trailing_newline_is_accepted_and_never_shown(command, component, variable):
    key = "s3cr3tEF-1234\r\n"
    env = {**_clean_env(), variable: key, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    process = subprocess.Popen(
        [sys.executable, "-m", "topcoins", command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # A refused key exits within about 0.5 s (above); this one must still be running,
        # waiting for the (unreachable) broker.
        time.sleep(ACCEPTED_AFTER_SECONDS)
        assert process.poll() is None, "the producer stopped although its key is usable"
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=START_DEADLINE_SECONDS)
    output = (stdout + stderr).decode(errors="replace")
    assert f"starting {component}" in output
    assert process.returncode == 0, output[-500:]
    for shown in (*secret_forms(key), "s3cr3tEF"):
        assert shown not in output, shown
