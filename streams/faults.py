"""Test-only fault injection for the stream worker: die in the middle of a generation.

``KillAfterRows(generation=g, rows=k)`` makes the ``TopListUpdater`` wait until the first
``k`` rows of the ``g``-th generation it publishes (counted from 1 since the process
started) are delivered, then end the process at once with ``os._exit(137)`` (the status
of a SIGKILL), without sending the rest of the rows or the meta. Deterministic: no race
with a signal sent from outside. ``streams/main.py`` installs it only when the
test-only variable ``TOPCOINS_TEST_KILL_AFTER_ROWS`` is set; it is never set in
production.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

__all__ = ["KILLED_STATUS", "KillAfterRows"]

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

    def rows_before_exit(self, generation: int) -> int | None:
        """How many rows the ``generation``-th generation may deliver before the exit
        (None: this generation is not the one to die in)."""
        return self.rows if generation == self.generation else None

    def exit(self) -> None:
        """End the process now, like SIGKILL: no flush, no clean-up, no commit."""
        logger.warning(
            "test fault: exiting in the middle of a generation",
            extra={"generation": self.generation, "rows": self.rows},
        )
        logging.shutdown()
        os._exit(KILLED_STATUS)
