"""What a history reader has done so far: read by ``/metrics`` (the skips by reason, as
``topcoins_web_history_skipped_messages_total``) and by the tests (joins, cache hits,
timestamp searches)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["HistoryStats"]


@dataclass
class HistoryStats:
    """Counts of one reader's work since it was created."""

    join_cache_hits: int = 0
    joins: int = 0
    timestamp_searches: int = 0  # binary searches, when offsets_for_times answered wrongly
    index_hits: int = 0  # moments found from records seen before, without the broker
    skipped_messages: int = 0  # raw messages walked past, never served (all reasons)
    # Per reason: ``undecodable`` (or of the wrong type), ``from_future``.
    skipped_by_reason: dict[str, int] = field(default_factory=dict)

    def skipped(self, reason: str) -> None:
        """Count one raw message walked past, for ``reason``."""
        self.skipped_messages += 1
        self.skipped_by_reason[reason] = self.skipped_by_reason.get(reason, 0) + 1
