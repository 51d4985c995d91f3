"""The history of the top list, read from the raw snapshot topics (aiokafka, no Faust).

``HistoryReader`` answers "what was the list at this moment" (``GET /?at=``,
``topcoins replay --at``) and replays a window of snapshots (``topcoins replay``), joining
with ``topcoins.domain`` exactly as the stream worker does. One module per job:
``reader`` (the questions), ``connection`` (the group-less consumer), ``fetch`` (its read
loop), ``locate`` (finding a moment), ``time_index`` (the records seen so far, so that a
moment between them needs no broker), ``window`` (a replay's messages), ``decode``,
``caches``, ``stats`` and ``errors``.
"""

from topcoins.history.decode import Offload, decode_and_join
from topcoins.history.errors import (
    HistoryError,
    HistoryReadError,
    HistoryUnavailable,
    TimeInFuture,
)
from topcoins.history.reader import HistoryReader, ReplayResult, replay, snapshots_at, top_list_at
from topcoins.history.stats import HistoryStats

__all__ = [
    "HistoryError",
    "HistoryReadError",
    "HistoryReader",
    "HistoryStats",
    "HistoryUnavailable",
    "Offload",
    "ReplayResult",
    "TimeInFuture",
    "decode_and_join",
    "replay",
    "snapshots_at",
    "top_list_at",
]
