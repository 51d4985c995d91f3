import json
import logging

import pytest

from topcoins.logs import configure_logging


@pytest.fixture
def json_lines(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield lambda: [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    root.handlers[:], level = saved
    root.setLevel(level)


def test_each_record_is_one_json_line_with_structured_fields(json_lines):
    configure_logging("web", "INFO")
    logging.getLogger("topcoins.test").info("served", extra={"status": 200, "path": "/"})
    [line] = json_lines()
    assert line["msg"] == "served"
    assert line["level"] == "info"
    assert line["component"] == "web"
    assert line["status"] == 200
    assert line["ts"].endswith("+00:00")


def test_secrets_never_reach_the_output(json_lines):
    configure_logging("pricing", "INFO", secrets=["KEY-123"])
    log = logging.getLogger("topcoins.test")
    log.info("calling with %s", "KEY-123", extra={"url": "http://x/?api_key=KEY-123"})
    try:
        raise RuntimeError("bad key KEY-123")
    except RuntimeError:
        log.exception("failed")
    lines = json_lines()
    assert len(lines) == 2
    assert "KEY-123" not in json.dumps(lines)
    assert "***" in lines[0]["msg"]
    assert "RuntimeError" in lines[1]["exc"]


def test_level_filters_debug(json_lines):
    configure_logging("web", "WARNING")
    logging.getLogger("topcoins.test").info("hidden")
    logging.getLogger("topcoins.test").warning("shown")
    assert [line["msg"] for line in json_lines()] == ["shown"]


@pytest.mark.parametrize("key", ["KEY-123\n", "KEY-123\r\n", "kéy-123"])
def test_escaped_and_bytes_forms_of_a_secret_never_reach_the_output(json_lines, key):
    configure_logging("pricing", "INFO", secrets=[key])
    log = logging.getLogger("topcoins.test")
    log.warning("poll failed", extra={"error": f"Illegal header value {key.encode()!r}"})
    try:
        raise ValueError(f"bad key {key!r}")
    except ValueError:
        log.exception("failed")
    out = json.dumps(json_lines())
    assert "KEY-123" not in out and "y-123" not in out
    assert out.count("***") >= 2
