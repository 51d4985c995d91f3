"""Short log lines for people (``LOG_FORMAT=text``), and the demotion of library chatter.

A text line is ``HH:MM:SS.mmm LEVEL component  message  key=value ...``: local time, only
the few structured fields that read well on one line (numbers, booleans and short strings;
no nested settings, no snapshot ids), and a traceback only when the record carries one.

``QuietLifecycle`` turns the start/stop narration of Faust, mode and uvicorn ("[^--App]:
Starting...", "Waiting for application startup.") into DEBUG records, in both formats, so
the INFO log says what topcoins does, not how its libraries boot. ``RepeatLimiter`` lets
one of a run of identical library records through per minute (aiokafka logs an ERROR at
every 100 ms reconnect while a broker is down); the next one to pass carries
``repeated=N``, the count held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["QuietLifecycle", "RepeatLimiter", "TextFormatter"]

# Attributes every LogRecord has; anything else passed with ``extra=`` is a structured field.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
_MAX_VALUE_CHARS = 48
_MAX_REASON_CHARS = 120  # what went wrong deserves more room
_REASON_KEYS = frozenset({"error", "reason", "detail"})
_MAX_FIELDS = 6
# Long identifiers and nested blobs that are useful in JSON but noise on a console line.
_HIDDEN_SUFFIXES = ("snapshot_id", "settings", "schedule")

# Loggers whose INFO records narrate a library's own lifecycle.
_LIFECYCLE_LOGGERS = ("faust", "mode", "uvicorn.error", "aiokafka")
# mode's services (Faust's and ours) prefix every message with their "[^--Name]:" beacon.
_BEACON = "[^"
# Libraries whose identical records are rate-limited.
_CHATTY_LOGGERS = ("aiokafka", "faust", "mode")
REPEAT_WINDOW_SECONDS = 60.0


def _short(value: Any, limit: int = _MAX_VALUE_CHARS) -> str | None:
    """``value`` as a console field, or None when it would not read well on one line."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        text = value if " " not in value else repr(value)
        return text if len(text) <= limit else text[: limit - 1] + "…"
    if isinstance(value, list | tuple | set | frozenset) and value:
        items = [_short(item) for item in value]
        if all(item is not None for item in items):
            text = ",".join(str(item) for item in items)
            if len(text) <= _MAX_VALUE_CHARS:
                return text
        return f"<{len(value)} items>"
    if isinstance(value, dict) and value:
        pairs = [(key, _short(item)) for key, item in value.items()]
        text = ",".join(f"{key}:{item}" for key, item in pairs)
        if all(item is not None for _, item in pairs) and len(text) <= _MAX_VALUE_CHARS:
            return text
        return f"<{len(value)} items>"
    return None


class TextFormatter(logging.Formatter):
    """One short human line per record: time, level, component, message, a few fields."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        parts = [f"{moment} {record.levelname:<7} {self.component:<16} {record.getMessage()}"]
        fields = []
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRS or key.startswith("_") or key.endswith(_HIDDEN_SUFFIXES):
                continue
            text = _short(value, _MAX_REASON_CHARS if key in _REASON_KEYS else _MAX_VALUE_CHARS)
            if text is not None:
                fields.append(f"{key}={text}")
        if fields:
            parts.append(" ".join(fields[:_MAX_FIELDS]))
        line = "  ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        return line


@dataclass(frozen=True)
class QuietLifecycle:
    """A log filter that demotes libraries' INFO lifecycle narration to DEBUG (dropped unless
    ``level`` is DEBUG)."""

    level: int

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not _is_lifecycle(record):
            return True
        if self.level > logging.DEBUG:
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def _is_lifecycle(record: logging.LogRecord) -> bool:
    if record.name.startswith(_LIFECYCLE_LOGGERS):
        return True
    return record.getMessage().startswith(_BEACON)


class RepeatLimiter(logging.Filter):
    """Passes one record per ``window`` seconds of each library message template."""

    def __init__(
        self, window: float = REPEAT_WINDOW_SECONDS, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window, self.monotonic = window, monotonic
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(_CHATTY_LOGGERS):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.monotonic()
        passed_at, held = self._seen.get(key, (None, 0))
        if passed_at is not None and now - passed_at < self.window:
            self._seen[key] = (passed_at, held + 1)
            return False
        self._seen[key] = (now, 0)
        if held:
            record.repeated = held
        return True
