"""The one rule for timestamps from the future, shared by every reader of the topics.

A record stamped (``fetched_at``, ``last_attempt_at``) more than ``FUTURE_TOLERANCE``
ahead of the reader's clock is refused: kept in force, it would make every real record
after it look older, for ever. The worker skips such a snapshot (``from_future``), the
history reader (``GET /?at=``, ``topcoins replay``) walks past it the same way, and the
web replica refuses such a producer status.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["FUTURE_TOLERANCE", "from_future"]

# How far ahead of the reader's clock a record's stamp may be (clock skew).
FUTURE_TOLERANCE = timedelta(minutes=5)


def from_future(stamp: datetime, now: datetime) -> bool:
    """True when ``stamp`` is more than ``FUTURE_TOLERANCE`` ahead of ``now``."""
    return stamp > now + FUTURE_TOLERANCE
