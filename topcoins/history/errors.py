"""Exceptions of the history reader (as-of lookups and replays), all derived from one root.

HistoryError
├── HistoryUnavailable  the raw topics no longer (or never did) hold that moment
├── TimeInFuture        the moment asked for is later than now
└── HistoryReadError    the broker failed or timed out while reading (retriable)
"""

from __future__ import annotations

from datetime import datetime

__all__ = ["HistoryError", "HistoryReadError", "HistoryUnavailable", "TimeInFuture"]


class HistoryError(Exception):
    """Root of the errors of ``topcoins.history``."""

    retriable = False


class HistoryUnavailable(HistoryError):
    """The moment is before the retained history of the raw topics (or they do not exist).

    ``earliest`` is the ``fetched_at`` of the oldest retained ranking snapshot, when there
    is one: the earliest moment a list can be given for.
    """

    def __init__(self, message: str, *, earliest: datetime | None = None) -> None:
        super().__init__(message)
        self.earliest = earliest


class TimeInFuture(HistoryError):
    """The moment asked for is later than now: there is no list for it yet."""


class HistoryReadError(HistoryError):
    """Reading the raw topics failed (broker down, timeout); asking again may work."""

    retriable = True
