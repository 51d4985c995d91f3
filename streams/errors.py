"""Exceptions of the stream worker, all derived from one root.

StreamsError
├── AliasTableError      the alias table file is missing or holds bad data
└── TransportError       the Kafka client no longer offers what the worker overrides
"""

from __future__ import annotations

__all__ = ["AliasTableError", "StreamsError", "TransportError"]


class StreamsError(Exception):
    """Root of every error raised by ``topcoins.streams``."""


class AliasTableError(StreamsError):
    """The alias table cannot be used; the message names the entry and what to fix."""


class TransportError(StreamsError):
    """The installed aiokafka/Faust lacks a hook the worker's transport relies on."""
