"""Strict readers for JSON values: each returns the typed value or raises ``ValueError``.

The clients wrap these errors into ``BadResponseError`` with the item's position, so a
value of the wrong type never reaches the Avro encoder. A value of the right type that the
records cannot (or must not) carry raises ``OutOfRange``: a timestamp outside years
1-9999 in UTC, a non-finite number, an integer beyond Avro's ``long``, a negative volume,
an over-long or unprintable symbol or name, a symbol a spreadsheet would read as a
formula. The clients drop that one item and count ``reason``; the rest of the answer stands.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from topcoins.csv_cells import FORMULA_PREFIXES
from topcoins.schemas.records import utc_millis

__all__ = [
    "FORMULA_PREFIXES",
    "MAX_NAME_CHARS",
    "MAX_SYMBOL_CHARS",
    "OutOfRange",
    "optional_count",
    "optional_int",
    "optional_number",
    "optional_number_at_least",
    "optional_object",
    "optional_str",
    "optional_timestamp",
    "parse_items",
    "require_int",
    "require_name",
    "require_str",
    "require_symbol",
]

T = TypeVar("T")

MAX_SYMBOL_CHARS = 32  # real symbols have at most about 12
MAX_NAME_CHARS = 128  # real names (and slugs) have at most about 40
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1  # Avro long


class OutOfRange(ValueError):
    """A well-typed value the records cannot carry; ``reason`` is the metric label."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def require_int(value: Any, name: str) -> int:
    """An integer (JSON booleans are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {_shown(value)}")
    if not _LONG_MIN <= value <= _LONG_MAX:
        raise OutOfRange(f"{name} is out of range, got {_shown(value)}", "number_out_of_range")
    return value


def optional_int(value: Any, name: str) -> int | None:
    """An integer or ``None``."""
    return None if value is None else require_int(value, name)


def optional_object(value: Any, name: str) -> dict[str, Any]:
    """A JSON object, or ``{}`` for ``None``."""
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"{name} must be an object")
    return value or {}


def optional_count(block: Any, block_name: str, key: str, name: str) -> int | None:
    """``block[key]`` as an integer or ``None``; ``block`` is an optional object."""
    return optional_int(optional_object(block, block_name).get(key), name)


def parse_items(
    items: Iterable[Any],
    parse: Callable[[int, Any], T],
    dropped: list[OutOfRange],
    *,
    noun: str,
    first: int = 0,
) -> list[T]:
    """``parse(index, item)`` of each item; one the records cannot carry is left out and its
    error appended to ``dropped``, any other invalid one raises ``ValueError`` naming it as
    ``noun #(first + index)``."""
    parsed = []
    for index, item in enumerate(items):
        try:
            parsed.append(parse(index, item))
        except OutOfRange as exc:
            dropped.append(exc)
        except ValueError as exc:
            raise ValueError(f"{noun} #{first + index} is invalid: {exc}") from exc
    return parsed


def require_str(value: Any, name: str) -> str:
    """A string."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {_shown(value)}")
    return value


def optional_str(value: Any, name: str, *, max_chars: int | None = None) -> str | None:
    """A string (of at most ``max_chars`` printable characters, if given) or ``None``."""
    return None if value is None else _bounded(require_str(value, name), name, max_chars)


def _bounded(text: str, name: str, max_chars: int | None, kind: str = "text") -> str:
    if max_chars is None:
        return text
    if len(text) > max_chars:
        raise OutOfRange(
            f"{name} is {len(text)} characters, at most {max_chars}", f"{kind}_too_long"
        )
    if not text.isprintable():
        raise OutOfRange(f"{name} holds a control character", f"{kind}_invalid")
    return text


def require_symbol(value: Any, name: str) -> str:
    """A ticker symbol: printable, at most ``MAX_SYMBOL_CHARS``, not formula-like."""
    symbol = _bounded(require_str(value, name), name, MAX_SYMBOL_CHARS, "symbol")
    if symbol.startswith(FORMULA_PREFIXES):
        raise OutOfRange(f"{name} starts like a spreadsheet formula", "symbol_invalid")
    return symbol


def require_name(value: Any, name: str) -> str:
    """An asset name (or slug): printable, at most ``MAX_NAME_CHARS``."""
    return _bounded(require_str(value, name), name, MAX_NAME_CHARS, "name")


def optional_number(value: Any, name: str, *, volume: bool = False) -> float | None:
    """A finite number as ``float``, or ``None``; a missing value never becomes 0.

    A number that is not finite (JSON ``1e999`` reads as infinity) is ``OutOfRange``, and so
    is a negative ``volume``.
    """
    if value is None:
        return None
    if type(value) is float:  # the common case, without a conversion
        number = value
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {_shown(value)}")
    else:
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any double
            number = math.inf
    if not math.isfinite(number):
        raise OutOfRange(f"{name} must be finite, got {_shown(value)}", "number_out_of_range")
    if volume and number < 0:
        raise OutOfRange(f"{name} must not be negative, got {_shown(value)}", "negative_volume")
    return number


def optional_number_at_least(value: Any, name: str, minimum: float, reason: str) -> float | None:
    """``optional_number``, and ``OutOfRange(reason)`` for a number below ``minimum``."""
    number = optional_number(value, name)
    if number is not None and number < minimum:
        raise OutOfRange(f"{name} must be at least {minimum:g}, got {_shown(value)}", reason)
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
    elif moment.tzinfo is UTC and not moment.microsecond % 1000:
        return moment  # already what ``utc_millis`` makes of it (the usual "...Z")
    try:
        return utc_millis(moment)
    except OverflowError as exc:  # e.g. 9999-12-31T23:00:00-05:00 is past year 9999 in UTC
        raise OutOfRange(
            f"{name} is outside years 1-9999 in UTC, got {_shown(value)}",
            "timestamp_out_of_range",
        ) from exc
