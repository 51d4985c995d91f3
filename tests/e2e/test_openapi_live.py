"""schemathesis against a live stack: no 5xx, and every answer matches ``/openapi.json``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import KINDS

pytestmark = pytest.mark.e2e

# Per operation and phase: about 150 requests in 10-15 s on 2 busy cores.
MAX_EXAMPLES = 25
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


def test_schemathesis_finds_no_5xx_and_no_answer_off_the_document(broker, stack_factory, tmp_path):
    if broker.kind != KINDS[0]:
        pytest.skip(f"the HTTP contract does not depend on the broker; checked on {KINDS[0]}")
    stack = stack_factory()
    assert stack.wait_ready(120), "the web service did not become ready within 120 s"
    url = f"{stack.web_url}/openapi.json"
    assert httpx.get(url, timeout=10).status_code == 200
    st = Path(sys.executable).with_name("st")
    command = [
        str(st),
        "run",
        url,
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        "examples,coverage,fuzzing",
        "--exclude-path",
        "/stream",  # an endless event stream, if the service has one
        "--workers",
        "1",
        "--seed",
        "13",
        "--request-timeout",
        "10",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "generated" in output and "passed" in output, output[-2000:]
