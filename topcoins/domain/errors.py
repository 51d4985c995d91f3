"""Exceptions of the pure domain (the join and its alias table), all derived from one root.

DomainError
└── AliasTableError   the alias table file is missing or holds bad data
"""

from __future__ import annotations

__all__ = ["AliasTableError", "DomainError"]


class DomainError(Exception):
    """Root of every error raised by ``topcoins.domain``."""


class AliasTableError(DomainError):
    """The alias table cannot be used; the message names the entry and what to fix."""
