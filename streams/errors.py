"""Exceptions of the stream worker, all derived from one root.

StreamsError
└── TransportError   the Kafka client no longer offers what the worker overrides

The join's errors are in ``topcoins.domain.errors``, the history reader's in
``topcoins.history.errors``.
"""

from __future__ import annotations

__all__ = ["StreamsError", "TransportError"]


class StreamsError(Exception):
    """Root of every error raised by ``topcoins.streams``."""


class TransportError(StreamsError):
    """The installed aiokafka/Faust lacks a hook the worker's transport relies on."""
