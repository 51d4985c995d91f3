"""The top topic folded into lists: one rule for every reader of it.

The stream worker writes, per generation, the changed ``TopCoin`` rows (key = symbol),
tombstones for the symbols that left the list, then one ``TopListMeta`` (key ``_meta``)
whose ``symbols`` is the full list in rank order. ``TopListFold`` applies the messages in
offset order and returns, at each meta, the ``ClosedGeneration``: the meta and the rows
it lists. A meta whose rows are not all of its generation (``schemas/generation.py``: the
snapshot pair every row and meta carries) is refused (``MixedGeneration``): rows left by a
worker killed in the middle of a generation, or kept over a compaction or a gap, never mix
into a list. A listed symbol without a row is the reader's call: the web replica refuses
the generation (``web.view``), the pricing producer leaves it out of its ids
(``producers.ranked_ids``). The fold knows nothing about Kafka, so it is tested with bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from topcoins.schemas.codec import decode
from topcoins.schemas.generation import GenerationId, foreign_rows, generation_of
from topcoins.schemas.records import TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY
from topcoins.topic_reader import UnusableMessage, key_text

__all__ = ["ClosedGeneration", "MixedGeneration", "TopListFold"]


class MixedGeneration(UnusableMessage):
    """A ``TopListMeta`` lists symbols whose rows belong to another generation."""

    def __init__(self, foreign: tuple[str, ...], total: int, generation: GenerationId) -> None:
        shown = ", ".join(foreign[:10]) + (", ..." if len(foreign) > 10 else "")
        super().__init__(
            f"TopListMeta of generation {generation} lists {total} symbols but the rows of "
            f"{len(foreign)} belong to another generation ({shown})"
        )
        self.foreign = foreign
        self.total = total
        self.generation = generation


@dataclass(frozen=True, slots=True)
class ClosedGeneration:
    """A meta and the rows of the symbols it lists (those that have one), all of its
    generation."""

    meta: TopListMeta
    rows: Mapping[str, TopCoin]


class TopListFold:
    """Applies top-topic messages in offset order; ``apply`` returns each closed generation.

    ``apply`` raises ``UnusableMessage`` for bytes that do not decode or break the key
    contract, ``MixedGeneration`` for a meta listing a row of another generation; the
    state is then unchanged apart from what the message legitimately set, so the caller
    logs, counts and carries on with the next message.
    """

    def __init__(self) -> None:
        self._rows: dict[str, TopCoin] = {}

    @property
    def row_count(self) -> int:
        """How many symbols currently have a row (including ones not in the latest meta)."""
        return len(self._rows)

    def apply(self, key: bytes | str | None, value: bytes | None) -> ClosedGeneration | None:
        """Apply one message; return the generation a meta closes."""
        symbol = key_text(key, topic="top", keyed_by="symbol")
        if value is None:
            if symbol == META_KEY:
                raise UnusableMessage(f"tombstone for {META_KEY!r}: the meta key is never deleted")
            self._rows.pop(symbol, None)
            return None
        try:
            record = decode(value)
        except Exception as exc:  # any codec failure, e.g. a timestamp out of datetime's range
            raise UnusableMessage(f"key {symbol!r}: {exc!r}") from exc
        if isinstance(record, TopCoin):
            if record.symbol != symbol:
                raise UnusableMessage(
                    f"TopCoin for symbol {record.symbol!r} under key {symbol!r}; "
                    "rows must be keyed by their symbol"
                )
            self._rows[symbol] = record
            return None
        if isinstance(record, TopListMeta):
            if symbol != META_KEY:
                raise UnusableMessage(f"TopListMeta under key {symbol!r}; expected {META_KEY!r}")
            return self._close(record)
        raise UnusableMessage(f"{type(record).__name__} does not belong on the top topic")

    def _close(self, meta: TopListMeta) -> ClosedGeneration:
        if len(set(meta.symbols)) != len(meta.symbols):
            twice = sorted(s for s, n in Counter(meta.symbols).items() if n > 1)
            raise UnusableMessage(f"TopListMeta lists symbols more than once: {', '.join(twice)}")
        listed = {s: self._rows[s] for s in meta.symbols if s in self._rows}
        foreign = foreign_rows(meta, {s: generation_of(row) for s, row in listed.items()})
        if foreign:
            raise MixedGeneration(foreign, len(meta.symbols), generation_of(meta))
        return ClosedGeneration(meta, listed)
