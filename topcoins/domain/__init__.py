"""The pure domain: the join, its alias table and the replay fold (no I/O, no Faust).

The stream worker (``topcoins.streams``), the web's ``GET /?at=`` and ``topcoins replay``
(through ``topcoins.history``) all import the join from here, so each gives the same list
for the same snapshots.
"""

from topcoins.domain.aliases import AliasEntry, AliasTable
from topcoins.domain.errors import AliasTableError, DomainError
from topcoins.domain.fold import Fold, FoldEntry, fold
from topcoins.domain.join import join_top_list
from topcoins.domain.matching import normalise_name
from topcoins.domain.results import (
    ClaimConflict,
    DroppedAsset,
    DropReason,
    JoinReport,
    JoinResult,
    MatchRule,
    MissingAliasTarget,
)

__all__ = [
    "AliasEntry",
    "AliasTable",
    "AliasTableError",
    "ClaimConflict",
    "DomainError",
    "DropReason",
    "DroppedAsset",
    "Fold",
    "FoldEntry",
    "JoinReport",
    "JoinResult",
    "MatchRule",
    "MissingAliasTarget",
    "fold",
    "join_top_list",
    "normalise_name",
]
