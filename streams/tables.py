"""The worker's Faust tables (memory store, recovered from their changelog topics).

``latest``: ``"ranking"`` / ``"prices"`` -> the single-object bytes of the snapshot in
force. After a restart the join runs again from these, so a new price snapshot is joined
with the ranking that arrived before the restart.

``top_coins``: CryptoCompare symbol -> the encoded ``TopCoin`` row last written to the top
topic; the worker diffs each new generation against it and writes only changed rows.

Both have one partition, like the input topics they are updated from.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import faust
from faust.types import TableT

from topcoins.schemas.records import PriceSnapshot, RankingSnapshot

__all__ = ["SnapshotKind", "WorkerTables", "declare_tables"]

LATEST_TABLE = "latest-snapshots"
TOP_COINS_TABLE = "top-coins"


class SnapshotKind(StrEnum):
    """Key of a snapshot in the ``latest`` table."""

    RANKING = "ranking"
    PRICES = "prices"

    @property
    def record_type(self) -> type[RankingSnapshot] | type[PriceSnapshot]:
        """The record this kind of snapshot decodes to."""
        return RankingSnapshot if self is SnapshotKind.RANKING else PriceSnapshot


@dataclass(frozen=True)
class WorkerTables:
    """The worker's state."""

    latest: TableT
    top_coins: TableT


def declare_tables(app: faust.App) -> WorkerTables:
    """Declare both tables on ``app``."""

    def table(name: str, description: str) -> TableT:
        """A one-partition table of ``str`` keys and ``bytes`` values."""
        return app.Table(name, partitions=1, key_type=str, value_type=bytes, help=description)

    return WorkerTables(
        latest=table(
            LATEST_TABLE,
            "Snapshot in force per kind ('ranking', 'prices'), as single-object bytes.",
        ),
        top_coins=table(
            TOP_COINS_TABLE,
            "Encoded TopCoin rows of the current generation, by CryptoCompare symbol.",
        ),
    )
