"""Structured JSON-line logging with secret redaction, shared by every component."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from topcoins.redaction import redact
from topcoins.textlogs import QuietLifecycle, RepeatLimiter, TextFormatter
from topcoins.tracing import TraceContextFilter

__all__ = ["JsonFormatter", "RedactingFilter", "configure_logging"]

# Attributes every LogRecord has; anything else passed with ``extra=`` is a structured field.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


class JsonFormatter(logging.Formatter):
    """Formats each record as one JSON object on one line."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


class RedactingFilter(logging.Filter):
    """Replaces every known secret value in a formatted record by ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = _redact(message, self.secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, _redact(value, self.secrets))
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, _redact(text, self.secrets)
        return True


class _RedactingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose final line is redacted too (covers pre-formatted exc_text)."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__(sys.stderr)
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return _redact(super().format(record), self.secrets)


def _redact(text: str, secrets: Iterable[str]) -> str:
    return redact(text, secrets)


def configure_logging(
    component: str, level: str = "INFO", secrets: Iterable[str] = (), fmt: str = "json"
) -> None:
    """Route all logging (ours, Faust's, aiokafka's, uvicorn's) to stderr: JSON lines, or
    short text lines with ``fmt="text"`` (``LOG_FORMAT``). Libraries' lifecycle narration
    is DEBUG in both, and their repeated records pass once a minute."""
    secret_values = tuple(s for s in secrets if s)
    handler = _RedactingHandler(secret_values)
    handler.setFormatter(TextFormatter(component) if fmt == "text" else JsonFormatter(component))
    handler.addFilter(QuietLifecycle(logging.getLevelName(level)))
    handler.addFilter(RepeatLimiter())
    handler.addFilter(RedactingFilter(secret_values))
    handler.addFilter(TraceContextFilter())  # trace_id, span_id while a span is active
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faust", "mode"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
