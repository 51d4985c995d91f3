"""Which generation a top-topic record belongs to, and the rule that keeps generations apart.

A generation of the top list is identified by the snapshot pair it was joined from:
``(ranking_snapshot_id, pricing_snapshot_id)``. Every ``TopCoin`` row and the
``TopListMeta`` that closes the generation carry that pair. A reader that builds a list at
a meta uses a row only if it names the meta's pair: a row of another generation (one left
by a worker killed in the middle of a generation, or kept over a gap or a compaction) makes
the meta unusable, and the reader keeps its previous list. The web replica, the pricing
producer's ranked-ids reader and (restated without importing topcoins)
``scripts/example_consumer.py`` apply this rule.
"""

from __future__ import annotations

from collections.abc import Mapping

from topcoins.schemas.records import TopCoin, TopListMeta

__all__ = ["GenerationId", "foreign_rows", "generation_of"]

# (ranking_snapshot_id, pricing_snapshot_id); the pricing id is None before any prices.
GenerationId = tuple[str, str | None]


def generation_of(record: TopCoin | TopListMeta) -> GenerationId:
    """The generation a row or a meta belongs to."""
    return (record.ranking_snapshot_id, record.pricing_snapshot_id)


def foreign_rows(meta: TopListMeta, rows: Mapping[str, GenerationId]) -> tuple[str, ...]:
    """The symbols ``meta`` lists whose row (``rows``: symbol -> the row's generation) is
    of another generation, in the meta's order. Symbols without a row are not included."""
    expected = generation_of(meta)
    return tuple(symbol for symbol in meta.symbols if symbol in rows and rows[symbol] != expected)
