"""The worker's agents: one per input topic, each handing its messages to the updater.

Both agents feed one ``TopListUpdater`` (``streams/updater.py``), telling it whether each
message is the last one available on its partition (``is_caught_up``: its offset is at
least the partition's high watermark minus one, the watermark coming from the consumer's
latest fetch response); a message with newer ones waiting is only stored (the updater's
backlog collapse). Whatever a message provokes is logged and counted here: left to Faust,
the agent would restart and the message would be committed unnoticed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import faust
from faust.types import TP, AgentT, StreamT
from faust.types.tuples import Message

from topcoins.streams.progress import AgentProgress
from topcoins.streams.tables import SnapshotKind
from topcoins.streams.topics import WorkerTopics
from topcoins.streams.updater import Outcome, TopListUpdater

__all__ = ["WorkerAgents", "is_caught_up", "register_agents"]


@dataclass(frozen=True)
class WorkerAgents:
    """The two agents, one per input topic."""

    ranks: AgentT
    prices: AgentT


def is_caught_up(offset: int, highwater: int | None) -> bool:
    """True when the message at ``offset`` is the last one available on its partition.

    ``highwater`` is the partition's high watermark (the offset the next message will get)
    from the consumer's latest fetch response, None when unknown. Unknown counts as caught
    up: an extra join is harmless, a last snapshot left unjoined is not. A watermark that
    under-reports (Tansu's ListOffsets does after a multi-record batch; its fetch responses
    did not in our tests) only makes a message look *more* caught up, so the last message
    is always joined; ``- 1`` and not ``- 2``, so the one before it is not.
    """
    return highwater is None or offset >= highwater - 1


def register_agents(
    app: faust.App,
    topics: WorkerTopics,
    updater: TopListUpdater,
    progress: AgentProgress | None = None,
) -> WorkerAgents:
    """Attach one agent per input topic to ``app``; each yields an ``Outcome`` per message.

    ``progress`` hears of every message handled or failed (``streams/progress.py``)."""

    def caught_up(message: Message) -> bool:
        highwater = _highwater(app, message.tp)
        if highwater is not None:
            lag = max(0, highwater - message.offset - 1)
            updater.metrics.consumer_lag.labels(message.topic).set(lag)
        return is_caught_up(message.offset, highwater)

    async def handle(kind: SnapshotKind, message: Message, value: bytes | None) -> Outcome:
        # Whatever a message provokes is logged and counted here: left to Faust, the
        # agent would restart and the message would be committed unnoticed.
        try:
            outcome = await updater.apply(kind, message, value, caught_up=caught_up(message))
        except Exception as exc:
            if progress is not None:
                progress.failed(message, repr(exc))
            return updater.failed(message, exc)
        if progress is not None:
            progress.handled(message)
        return outcome

    async def process_ranks(stream: StreamT[bytes]) -> AsyncIterator[Outcome]:
        async for event in stream.events():
            yield await handle(SnapshotKind.RANKING, event.message, event.value)

    async def process_prices(stream: StreamT[bytes]) -> AsyncIterator[Outcome]:
        async for event in stream.events():
            yield await handle(SnapshotKind.PRICES, event.message, event.value)

    return WorkerAgents(
        ranks=app.agent(topics.ranks, name="process-ranks", concurrency=1)(process_ranks),
        prices=app.agent(topics.prices, name="process-prices", concurrency=1)(process_prices),
    )


def _highwater(app: faust.App, tp: TP) -> int | None:
    """The partition's high watermark as the consumer last fetched it, None if unknown."""
    try:
        return app.consumer.highwater(tp)
    except Exception:  # not started (test context), partition revoked mid-rebalance, ...
        return None
