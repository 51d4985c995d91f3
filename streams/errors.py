"""Exceptions of the stream worker, all derived from one root.

StreamsError
├── AliasTableError         the alias table file is missing or holds bad data
├── TransportError          the Kafka client no longer offers what the worker overrides
└── HistoryError            a question about the past cannot be answered
    ├── HistoryUnavailable  the raw topics no longer (or never did) hold that moment
    ├── TimeInFuture        the moment asked for is later than now
    └── HistoryReadError    the broker failed or timed out while reading (retriable)
"""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "AliasTableError",
    "HistoryError",
    "HistoryReadError",
    "HistoryUnavailable",
    "StreamsError",
    "TimeInFuture",
    "TransportError",
]


class StreamsError(Exception):
    """Root of every error raised by ``topcoins.streams``."""


class AliasTableError(StreamsError):
    """The alias table cannot be used; the message names the entry and what to fix."""


class TransportError(StreamsError):
    """The installed aiokafka/Faust lacks a hook the worker's transport relies on."""


class HistoryError(StreamsError):
    """Root of the errors of ``topcoins.streams.history`` (as-of lookups and replay)."""

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
