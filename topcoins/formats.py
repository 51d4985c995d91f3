"""The text of numbers and moments: one rule for every output, one for every time typed in.

* ``format_number``: the shortest digits that read back as the same float (Python's
  ``repr``), positional and always with a decimal point: ``0.00001234`` rather than
  ``1.234e-05``, ``67000.0`` rather than ``67000``. A value that is not finite has no such
  text (``ValueError``): JSON has none, and every price or volume is finite by then.
* ``iso_utc``: ISO 8601 in UTC with a ``Z``, to the millisecond by default:
  ``2024-05-01T12:00:00.000Z``.
* ``parse_moment``: a time given by a user (``GET /?at=``, ``topcoins replay --at``,
  ``--since``, ``--until``). An RFC 3339 date and time with an explicit offset:
  ``YYYY-MM-DDTHH:MM[:SS[.fraction]]`` then ``Z`` or ``+HH:MM`` / ``-HH:MM`` (``T`` may be
  a space, letters may be lower case). A time without an offset is refused rather than
  guessed as UTC. A space before the offset stands for ``+`` (a query string decodes an
  unencoded ``+`` to a space), so ``12:00:00 01:00`` is ``12:00:00+01:00``. Fractions
  beyond the millisecond are dropped (Kafka timestamps are milliseconds); the moment must
  be 1970-01-01T00:00:00Z or later (the first Kafka timestamp).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import overload

__all__ = ["TIME_EXAMPLE", "format_number", "iso_utc", "parse_moment"]

TIME_EXAMPLE = "2026-11-27T12:00:00Z or 2026-11-27T13:00:00.123+01:00"

# RFC 3339 date-time; seconds optional, the offset matched optionally to say it is missing.
_MOMENT = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)"
    r"(?P<offset>[Zz]|[+ -]\d{2}:\d{2})?",
    re.ASCII,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_number(value: float) -> str:
    """Shortest round-trip decimal text of ``value``, positional, with a decimal point."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} has no JSON or CSV number form")
    text = repr(float(value))
    if "e" in text:
        text = format(Decimal(text), "f")
    if "." not in text:
        text += ".0"
    return text


@overload
def iso_utc(moment: datetime, timespec: str = ...) -> str: ...
@overload
def iso_utc(moment: None, timespec: str = ...) -> None: ...
@overload
def iso_utc(moment: datetime | None, timespec: str = ...) -> str | None: ...
def iso_utc(moment: datetime | None, timespec: str = "milliseconds") -> str | None:
    """``2024-05-01T12:00:00.000Z`` (UTC; ``timespec`` as for ``isoformat``), or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_moment(raw: str, name: str, *, offset_example: str = "+01:00") -> datetime:
    """The UTC moment ``raw`` names (see the module docstring), truncated to whole
    milliseconds; raises ``ValueError`` with a message that starts with ``name``.
    ``offset_example`` shows an offset in the message for a time without one."""
    match = _MOMENT.fullmatch(raw)
    if match is None:
        raise ValueError(
            f"{name} must be an ISO 8601 date and time with a UTC offset, such as "
            f"{TIME_EXAMPLE}; got {raw!r}"
        )
    offset = match["offset"]
    if offset is None:
        raise ValueError(
            f"{name} {raw!r} has no UTC offset: add Z for UTC or the offset it was meant in "
            f"({offset_example})"
        )
    if offset[0] == " ":  # an unencoded "+" that the query string decoded to a space
        offset = "+" + offset[1:]
    if offset not in "Zz" and (int(offset[1:3]) > 23 or int(offset[4:6]) > 59):
        raise ValueError(f"{name} {raw!r} has an offset outside -23:59 to +23:59")
    text = f"{match['date']}T{match['time']}{'+00:00' if offset in 'Zz' else offset}"
    try:
        moment = datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{name} {raw!r} is not a valid time: {exc}") from None
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    if moment < _EPOCH:
        raise ValueError(f"{name} must be 1970-01-01T00:00:00Z or later, got {raw!r}")
    return moment
