"""The stream worker: joins the CryptoCompare ranking with CoinMarketCap prices.

The pure parts are re-exported here: the join (``join_top_list``), the alias table and the
errors. The Faust side lives in its own modules so that importing the join does not import
Faust: ``topcoins.streams.app.create_app(settings)`` builds the app and
``topcoins.streams.main.run_worker(settings)`` runs the worker process.
``topcoins.streams.history`` reads the raw topics for "as of" lookups and replays
(``HistoryReader``; aiokafka, no Faust) and ``topcoins.streams.replay`` is the
``topcoins replay`` command.
"""

from topcoins.streams.aliases import AliasEntry, AliasTable
from topcoins.streams.errors import (
    AliasTableError,
    HistoryError,
    HistoryReadError,
    HistoryUnavailable,
    StreamsError,
    TimeInFuture,
    TransportError,
)
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
    "HistoryError",
    "HistoryReadError",
    "HistoryUnavailable",
    "JoinReport",
    "JoinResult",
    "MatchRule",
    "MissingAliasTarget",
    "StreamsError",
    "TimeInFuture",
    "TransportError",
    "join_top_list",
    "normalise_name",
]
