"""The replay fold: which raw snapshots a worker starting from fresh state would apply.

``fold(entries, ranks_topic, prices_topic)`` takes the raw messages of a window (their
Kafka timestamp, which is the snapshot's ``fetched_at``, topic, offset and ``snapshot_id``
header), in any order, and applies them in a fixed order: by timestamp, then topic, then
offset. A snapshot whose id is the one in force on its topic is a retried publish and is
skipped, as the worker skips it; in this order none is ever older than the one in force.
Every other snapshot is accepted, and once a ranking is in force each accepted snapshot
starts a generation (the worker would join and publish it). Same entries, same fold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Fold", "FoldEntry", "fold"]


@dataclass(frozen=True, order=True)
class FoldEntry:
    """One raw message's place in the fold (ordered by timestamp, topic, offset)."""

    timestamp: int  # milliseconds since the epoch: the snapshot's fetched_at
    topic: str
    offset: int
    snapshot_id: str | None = field(compare=False)


@dataclass(frozen=True)
class Fold:
    """What the fold applied: per topic the accepted entries in fold order, the number of
    generations they made and of retried publishes skipped."""

    accepted: Mapping[str, tuple[FoldEntry, ...]]
    generations: int
    duplicates: int


def fold(entries: Iterable[FoldEntry], ranks_topic: str, prices_topic: str) -> Fold:
    """Apply ``entries`` to fresh state in fold order, as the worker would."""
    accepted: dict[str, list[FoldEntry]] = {ranks_topic: [], prices_topic: []}
    generations = duplicates = 0
    for entry in sorted(entries):
        in_force = accepted[entry.topic]
        if (
            in_force
            and entry.snapshot_id is not None
            and entry.snapshot_id == in_force[-1].snapshot_id
        ):
            duplicates += 1  # a retried publish of the snapshot in force
            continue
        in_force.append(entry)
        if accepted[ranks_topic]:
            generations += 1
    return Fold(
        accepted={topic: tuple(applied) for topic, applied in accepted.items()},
        generations=generations,
        duplicates=duplicates,
    )
