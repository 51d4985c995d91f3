"""Which CoinMarketCap ids the service ranks now: read back from the top topic.

The stream worker writes each generation of the top list as ``TopCoin`` rows (key =
CryptoCompare symbol, tombstone when an asset leaves) closed by a ``TopListMeta`` (key
``_meta``). ``RankedIds`` folds those messages (``topcoins.top_list``, the rule the web
replica applies too) into the ``cmc_id`` of every matched row of the latest closed
generation, in rank order (a meta listing a row of another generation is refused and the
previous ids stay); ``RankedIdsReader`` keeps one up to date in the background with a
``TopicReader`` (no group, from the beginning of the compacted topic). The pricing
producer refreshes the quotes of exactly these ids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from topcoins.lifecycle import AsyncLifecycle
from topcoins.producers.metrics import ProducerMetrics
from topcoins.schemas.topics import TopicSpec
from topcoins.top_list import TopListFold
from topcoins.topic_reader import (
    Batches,
    Message,
    TopicReader,
    group_less_consumer,
    skip_unusable,
    where,
)

__all__ = ["RankedIds", "RankedIdsReader"]

logger = logging.getLogger(__name__)

_RETRY_FIRST_S = 0.5
_RETRY_MAX_S = 30.0


class RankedIds:
    """The CoinMarketCap ids of the latest closed generation of the top list (pure).

    ``apply`` raises (``UnusableMessage``; ``MixedGeneration`` for a meta that lists a row
    of another generation) for a message it cannot use; the ids are then unchanged. A
    listed symbol without a row is left out of the ids.
    """

    def __init__(self) -> None:
        self._fold = TopListFold()
        self.ids: tuple[int, ...] | None = None
        self.generation: str | None = None  # the ranking snapshot id of that generation

    def apply(self, key: bytes | None, value: bytes | None) -> bool:
        """Apply one top-topic message; True when it closed a generation."""
        closed = self._fold.apply(key, value)
        if closed is None:
            return False
        ranked = (closed.rows[s].cmc_id for s in closed.meta.symbols if s in closed.rows)
        self.ids = tuple(dict.fromkeys(cmc_id for cmc_id in ranked if cmc_id is not None))
        self.generation = closed.meta.ranking_snapshot_id
        return True


class RankedIdsReader(AsyncLifecycle):
    """``async with RankedIdsReader(servers, topic, metrics) as r:`` keeps ``r.ids()`` current.

    Starts at once even when the broker or the topic is missing (``ids()`` is None until
    a generation was read) and reconnects with backoff; it never creates the topic
    (``TopicReader``). A message it cannot use is logged with topic, partition and
    offset, counted (``skipped_messages``) and skipped. ``stuck_reason``
    (``topcoins.stuck``) says when it keeps failing or stops advancing while messages
    wait; the producer's ``/readyz`` names it and ``topcoins_producer_consumer_stuck{topic}``
    is 1 meanwhile.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: TopicSpec,
        metrics: ProducerMetrics,
        *,
        client_id: str = "pricing-producer",
        consumer_factory: Callable[[], Any] | None = None,
        retry_first_s: float = _RETRY_FIRST_S,
        retry_max_s: float = _RETRY_MAX_S,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic.name
        self._metrics = metrics
        self._ids = RankedIds()
        self.reader = TopicReader(
            topic.name,
            topic.partitions,
            self.apply_batches,
            consumer_factory
            or (lambda: group_less_consumer(bootstrap_servers, client_id, client_options)),
            created_by="stream worker",
            retry_first_s=retry_first_s,
            retry_max_s=retry_max_s,
            on_lag=lambda lag: metrics.consumer_lag("ranked_ids", lag),
            keeps="the quotes refresh keeps the last ids read",
        )

    @property
    def stuck_reason(self) -> str | None:
        """Why the reader counts as stuck (``topcoins.stuck``), or None while it is healthy."""
        return self.reader.stuck_reason

    def ids(self) -> tuple[int, ...] | None:
        """The ids of the latest generation read, in rank order; None before the first."""
        return self._ids.ids

    async def _start(self) -> None:
        """Start reading in the background; returns at once."""
        self._metrics.watch_stuck(self.topic, lambda: self.stuck_reason)
        await self.reader.start()

    async def _stop(self) -> None:
        """Stop reading and close the consumer."""
        await self.reader.stop()

    def apply_batches(self, batches: Batches) -> None:
        """Apply fetched messages in order; a message that cannot be used is skipped."""
        skip_unusable(batches, self._apply, self._skipped)

    def _apply(self, message: Message) -> None:
        if self._ids.apply(message.key, message.value):
            logger.debug(
                "ranked ids updated",
                extra={"generation": self._ids.generation, "ids": len(self._ids.ids or ())},
            )

    def _skipped(self, message: Message, exc: Exception) -> None:
        self._metrics.skipped()
        logger.warning("skipped a top-topic message", extra={**where(message), "error": repr(exc)})
