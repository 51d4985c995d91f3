"""The stream worker: joins the CryptoCompare ranking with CoinMarketCap prices.

The pure parts are re-exported here: the join (``join_top_list``), the alias table and the
errors. The Faust side lives in its own modules so that importing the join does not import
Faust: ``topcoins.streams.app.create_app(settings)`` builds the app and
``topcoins.streams.main.run_worker(settings)`` runs the worker process.
"""

from topcoins.streams.aliases import AliasEntry, AliasTable
from topcoins.streams.errors import AliasTableError, StreamsError, TransportError
from topcoins.streams.join import (
    ClaimConflict,
    DroppedAsset,
    DropReason,
    JoinReport,
    JoinResult,
    MatchRule,
    MissingAliasTarget,
    join_top_list,
    normalise_name,
)

__all__ = [
    "AliasEntry",
    "AliasTable",
    "AliasTableError",
    "ClaimConflict",
    "DropReason",
    "DroppedAsset",
    "JoinReport",
    "JoinResult",
    "MatchRule",
    "MissingAliasTarget",
    "StreamsError",
    "TransportError",
    "join_top_list",
    "normalise_name",
]
