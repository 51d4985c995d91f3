"""Strict readers for JSON values: each returns the typed value or raises ``ValueError``.

The clients wrap these errors into ``BadResponseError`` with the item's position, so a
value of the wrong type never reaches the Avro encoder.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from topcoins.schemas.records import utc_millis

__all__ = [
    "optional_int",
    "optional_number",
    "optional_str",
    "optional_timestamp",
    "require_int",
    "require_str",
]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def require_int(value: Any, name: str) -> int:
    """An integer (JSON booleans are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {_shown(value)}")
    return value


def optional_int(value: Any, name: str) -> int | None:
    """An integer or ``None``."""
    return None if value is None else require_int(value, name)


def require_str(value: Any, name: str) -> str:
    """A string."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {_shown(value)}")
    return value


def optional_str(value: Any, name: str) -> str | None:
    """A string or ``None``."""
    return None if value is None else require_str(value, name)


def optional_number(value: Any, name: str) -> float | None:
    """A finite number as ``float``, or ``None``; a missing value never becomes 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {_shown(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {_shown(value)}")
    return number


def optional_timestamp(value: Any, name: str) -> datetime | None:
    """An ISO 8601 string (``Z`` or offset; naive means UTC) as UTC, to the millisecond."""
    text = optional_str(value, name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{name} must be an ISO 8601 timestamp, got {_shown(value)}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return utc_millis(moment)
