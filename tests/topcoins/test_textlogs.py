import json
import logging
import re

import pytest

from topcoins.logs import configure_logging
from topcoins.textlogs import QuietLifecycle, RepeatLimiter, TextFormatter

LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (INFO|DEBUG|WARNING|ERROR) +(\S+) +(.*)$")


@pytest.fixture
def stderr_lines(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield lambda: capsys.readouterr().err.splitlines()
    root.handlers[:], level = saved
    root.setLevel(level)


def _record(msg: str, name: str = "topcoins.test", level: int = logging.INFO, **extra):
    record = logging.LogRecord(name, level, __file__, 1, msg, None, None)
    record.__dict__.update(extra)
    return record


def test_a_text_line_has_time_level_component_message_and_the_short_fields():
    record = _record(
        "published snapshot",
        provider="coinmarketcap",
        items=700,
        fetch_seconds=0.03,
        snapshot_id="971b3f22cb524a40a7309ee6a403082f",
        settings={"kafka_bootstrap_servers": "x" * 900},
    )
    line = TextFormatter("pricing-producer").format(record)
    match = LINE.match(line)
    assert match, line
    assert match.group(1, 2) == ("INFO", "pricing-producer")
    assert match.group(3) == (
        "published snapshot  provider=coinmarketcap items=700 fetch_seconds=0.03"
    )


def test_long_values_and_lists_are_shortened_so_a_line_stays_short():
    record = _record(
        "published top list",
        reason="KafkaConnectionError: " + "x" * 500,
        dropped=[],
        missing=["A", "B"],
        many=[str(i) for i in range(100)],
        exited={"worker": 1},
        settings={"a": "b" * 100},
    )
    line = TextFormatter("stream-worker").format(record)
    assert len(line) < 250
    assert "reason='KafkaConnectionError: xxx" in line and "x…" in line
    assert "missing=A,B" in line
    assert "many=<100 items>" in line
    assert "exited=worker:1" in line
    assert "settings" not in line
    assert "dropped" not in line


def test_the_traceback_follows_the_line_only_when_the_record_has_one():
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        record = _record("failed", level=logging.ERROR)
        record.exc_info = (type(exc), exc, exc.__traceback__)
    first, *rest = TextFormatter("web").format(record).splitlines()
    assert LINE.match(first)
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "RuntimeError: boom"


@pytest.mark.parametrize(
    ("name", "msg"),
    [
        ("faust.app.base", "[^-App]: Starting..."),
        ("topcoins.streams.transport", "[^--_FetchWaitConsumer]: Stopping..."),
        ("mode.supervisors", "[^----OneForOneSupervisor: (1@0x7f)]: Starting..."),
        ("uvicorn.error", "Waiting for application startup."),
    ],
)
def test_library_lifecycle_chatter_is_debug(name, msg):
    at_info, at_debug = QuietLifecycle(logging.INFO), QuietLifecycle(logging.DEBUG)
    assert at_info.filter(_record(msg, name)) is False
    record = _record(msg, name)
    assert at_debug.filter(record) is True
    assert (record.levelno, record.levelname) == (logging.DEBUG, "DEBUG")


def test_our_own_lines_and_library_warnings_are_kept():
    quiet = QuietLifecycle(logging.INFO)
    assert quiet.filter(_record("published top list", "topcoins.streams.updater"))
    record = _record("[^Worker]: Error: rebalance failed", "faust.worker", logging.WARNING)
    assert quiet.filter(record)
    assert record.levelname == "WARNING"


def test_log_format_text_gives_one_short_line_per_record_and_drops_chatter(stderr_lines):
    configure_logging("web", "INFO", secrets=["KEY-123"], fmt="text")
    logging.getLogger("uvicorn.error").info("Started server process [1]")
    logging.getLogger("topcoins.web").info("serving new generation", extra={"generation": 3})
    logging.getLogger("topcoins.web").warning("bad key KEY-123", extra={"url": "/?k=KEY-123"})
    lines = stderr_lines()
    assert len(lines) == 2
    assert LINE.match(lines[0]).group(3) == "serving new generation  generation=3"
    assert "KEY-123" not in "\n".join(lines)
    assert LINE.match(lines[1]).group(1) == "WARNING"


def test_json_stays_the_default_and_drops_chatter_too(stderr_lines):
    configure_logging("stream-worker", "INFO")
    logging.getLogger("faust.worker").info("[^Worker]: Starting...")
    logging.getLogger("topcoins.streams").info("stream worker starting")
    [line] = stderr_lines()
    assert json.loads(line)["msg"] == "stream worker starting"


def test_a_library_repeating_itself_passes_once_a_window_then_says_how_often():
    now = [0.0]
    limiter = RepeatLimiter(window=60.0, monotonic=lambda: now[0])
    template = "Unable connect to node with id %s: %s"

    def passes(name: str = "aiokafka.conn") -> bool:
        record = logging.LogRecord(name, logging.ERROR, __file__, 1, template, (1, "x"), None)
        passed = limiter.filter(record)
        passes.last = record
        return passed

    assert passes()
    held = [passes() for _ in range(599)]  # 100 ms reconnects for a minute
    assert not any(held)
    assert passes(name="topcoins.web.follower")  # our own lines are never limited
    now[0] = 60.0
    assert passes()
    assert passes.last.repeated == 599
