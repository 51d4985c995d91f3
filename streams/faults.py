"""Test-only fault injection for the stream worker: die in the middle of a generation.

``KillAfterRows(generation=g, rows=k)`` makes the ``TopListUpdater`` wait until the first
``k`` rows of the ``g``-th generation it publishes (counted from 1 since the process
started) are delivered, then end the process at once with ``os._exit(137)`` (the status
of a SIGKILL), without sending the rest of the rows or the meta. ``KillAfterRow(symbol)``
does the same in the first generation that writes ``symbol``'s row, right after that row.
Deterministic: no race with a signal sent from outside. ``streams/main.py`` installs one
only when the test-only variable ``TOPCOINS_TEST_KILL_AFTER_ROWS`` is set; it is never set
in production.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["KILLED_STATUS", "Fault", "KillAfterRow", "KillAfterRows", "parse_fault"]

logger = logging.getLogger(__name__)

KILLED_STATUS = 137  # what a shell reports for a process ended by SIGKILL


@dataclass(frozen=True)
class KillAfterRows:
    """Exit after ``rows`` delivered rows of the ``generation``-th published generation."""

    generation: int
    rows: int

    @classmethod
    def parse(cls, text: str) -> KillAfterRows:
        """``"g:k"`` (both whole numbers, g >= 1, k >= 0); ``ValueError`` otherwise."""
        generation, sep, rows = text.partition(":")
        if not sep or not generation.strip().isdigit() or not rows.strip().isdigit():
            raise ValueError(f"expected GENERATION:ROWS such as 2:3, got {text!r}")
        parsed = cls(int(generation), int(rows))
        if parsed.generation < 1:
            raise ValueError(f"the generation counts from 1, got {text!r}")
        return parsed

    def rows_before_exit(self, generation: int, symbols: Sequence[str]) -> int | None:
        """How many of the rows ``symbols`` that the ``generation``-th generation writes
        may be delivered before the exit (None: not the generation to die in)."""
        return self.rows if generation == self.generation else None

    def exit(self) -> None:
        """End the process now, like SIGKILL: no flush, no clean-up, no commit."""
        _exit({"generation": self.generation, "rows": self.rows})


@dataclass(frozen=True)
class KillAfterRow:
    """Exit right after ``symbol``'s row is delivered, in the first generation writing it."""

    symbol: str

    def rows_before_exit(self, generation: int, symbols: Sequence[str]) -> int | None:
        """The rows up to and including ``symbol``'s (None when it is not among them)."""
        return symbols.index(self.symbol) + 1 if self.symbol in symbols else None

    def exit(self) -> None:
        """End the process now, like SIGKILL: no flush, no clean-up, no commit."""
        _exit({"after_row": self.symbol})


Fault = KillAfterRows | KillAfterRow


def parse_fault(text: str) -> Fault:
    """``"g:k"`` (``KillAfterRows``) or ``"row:SYMBOL"`` (``KillAfterRow``); ``ValueError``
    otherwise."""
    kind, sep, symbol = text.partition(":")
    if sep and kind.strip() == "row":
        if not symbol.strip():
            raise ValueError(f"expected row:SYMBOL such as row:BTC, got {text!r}")
        return KillAfterRow(symbol.strip())
    return KillAfterRows.parse(text)


def _exit(fields: dict[str, object]) -> None:
    logger.warning("test fault: exiting in the middle of a generation", extra=fields)
    logging.shutdown()
    os._exit(KILLED_STATUS)
