"""Which CoinMarketCap ids the service ranks now: read back from the top topic.

The stream worker writes each generation of the top list as ``TopCoin`` rows (key =
CryptoCompare symbol, tombstone when an asset leaves) closed by a ``TopListMeta`` (key
``_meta``). ``RankedIds`` folds those messages into the ``cmc_id`` of every matched row
of the latest closed generation, in rank order (a meta listing a row of another
generation, ``schemas/generation.py``, is refused and the previous ids stay);
``RankedIdsReader`` keeps one up to date
in the background with a plain consumer (no group, from the beginning of the compacted
topic). The pricing producer refreshes the quotes of exactly these ids.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from topcoins.lifecycle import AsyncLifecycle
from topcoins.producers.metrics import ProducerMetrics
from topcoins.schemas.codec import DecodeError, decode_as
from topcoins.schemas.generation import GenerationId, foreign_rows, generation_of
from topcoins.schemas.records import TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY, TopicSpec
from topcoins.stuck import ProgressWatch

__all__ = ["MixedGeneration", "RankedIds", "RankedIdsReader"]

logger = logging.getLogger(__name__)

_POLL_TIMEOUT_MS = 1000
_RETRY_FIRST_S = 0.5
_RETRY_MAX_S = 30.0


class MixedGeneration(ValueError):
    """A meta that lists a row of another generation (snapshot pair); not applied."""


class RankedIds:
    """The CoinMarketCap ids of the latest closed generation of the top list (pure).

    ``apply`` raises (``DecodeError`` or whatever the codec raises, e.g. for a timestamp
    out of datetime's range; ``MixedGeneration`` for a meta that lists a row of another
    generation) for a message it cannot use; the ids are then unchanged. A listed symbol
    without a row is left out of the ids.
    """

    def __init__(self) -> None:
        # symbol -> (cmc_id, the row's generation)
        self._rows: dict[str, tuple[int | None, GenerationId]] = {}
        self.ids: tuple[int, ...] | None = None
        self.generation: str | None = None  # the ranking snapshot id of that generation

    def apply(self, key: bytes | None, value: bytes | None) -> bool:
        """Apply one top-topic message; True when it closed a generation."""
        if key is None:
            raise DecodeError("a top-topic message without a key")
        try:
            name = key.decode()
        except UnicodeDecodeError as exc:
            raise DecodeError(f"key is not UTF-8: {exc}") from exc
        if name == META_KEY:
            if value is None:
                raise DecodeError("a tombstone for the generation marker")
            meta = decode_as(TopListMeta, value)
            listed = {s: self._rows[s] for s in meta.symbols if s in self._rows}
            foreign = foreign_rows(meta, {s: generation for s, (_, generation) in listed.items()})
            if foreign:
                raise MixedGeneration(
                    f"generation {generation_of(meta)}: the rows of {len(foreign)} of its "
                    f"{len(meta.symbols)} symbols belong to another generation "
                    f"({', '.join(foreign[:10])}); keeping the last ids"
                )
            ranked = (cmc_id for cmc_id, _ in listed.values())
            self.ids = tuple(dict.fromkeys(cmc_id for cmc_id in ranked if cmc_id is not None))
            self.generation = meta.ranking_snapshot_id
            return True
        if value is None:
            self._rows.pop(name, None)
        else:
            row = decode_as(TopCoin, value)
            self._rows[name] = (row.cmc_id, generation_of(row))
        return False


class _Message(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class _State(enum.Enum):
    NEW = "new"
    STARTED = "started"
    STOPPED = "stopped"


class RankedIdsReader(AsyncLifecycle):
    """``async with RankedIdsReader(servers, topic, metrics) as r:`` keeps ``r.ids()`` current.

    Starts at once even when the broker or the topic is missing (``ids()`` is None until
    a generation was read) and reconnects with backoff. It never creates the topic: a
    consumer that assigns a missing one could let the broker auto-create it with the
    wrong settings. A message it cannot use is logged with topic, partition and offset,
    counted (``skipped_messages``) and skipped. ``stuck_reason`` (``topcoins.stuck``) says
    when it keeps failing or stops advancing while messages wait; the producer's
    ``/readyz`` names it and ``topcoins_producer_consumer_stuck{topic}`` is 1 meanwhile.
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
        self._client_options = dict(client_options or {})
        self._partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        self._servers = bootstrap_servers
        self._client_id = client_id
        self._metrics = metrics
        self._factory = consumer_factory or self._new_consumer
        self._retry_first_s = retry_first_s
        self._retry_max_s = retry_max_s
        self._ids = RankedIds()
        self._next_offsets: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._state = _State.NEW
        self.progress = ProgressWatch()

    @property
    def stuck_reason(self) -> str | None:
        """Why the reader counts as stuck (``topcoins.stuck``), or None while it is healthy."""
        return self.progress.reason

    def ids(self) -> tuple[int, ...] | None:
        """The ids of the latest generation read, in rank order; None before the first."""
        return self._ids.ids

    async def start(self) -> None:
        """Start reading in the background; returns at once."""
        if self._state is _State.STOPPED:
            raise RuntimeError("this RankedIdsReader was stopped; create a new one")
        if self._state is _State.STARTED:
            return
        self._state = _State.STARTED
        self._metrics.watch_stuck(self.topic, lambda: self.stuck_reason)
        self._task = asyncio.create_task(self._read_forever(), name=f"ranked-ids:{self.topic}")

    async def stop(self) -> None:
        """Stop reading and close the consumer; safe to call twice."""
        self._state = _State.STOPPED
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    def apply_batches(self, batches: Mapping[TopicPartition, Sequence[_Message]]) -> None:
        """Apply fetched messages in order; a message that cannot be used is skipped."""
        for tp, messages in batches.items():
            for message in messages:
                self._next_offsets[tp] = message.offset + 1
                try:
                    closed = self._ids.apply(message.key, message.value)
                except Exception as exc:  # whatever the message provokes: skip it, go on
                    self._metrics.skipped()
                    logger.warning(
                        "skipped a top-topic message",
                        extra={
                            "topic": message.topic,
                            "partition": message.partition,
                            "offset": message.offset,
                            "error": repr(exc),
                        },
                    )
                    continue
                if closed:
                    logger.debug(
                        "ranked ids updated",
                        extra={"generation": self._ids.generation, "ids": len(self._ids.ids or ())},
                    )

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **self._client_options,
            bootstrap_servers=self._servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=self._client_id,
        )

    async def _read_forever(self) -> None:
        delay = self._retry_first_s
        while True:
            consumer = self._factory()
            try:
                await consumer.start()
                if self.topic in await consumer.topics():
                    consumer.assign(self._partitions)
                    await self._seek(consumer)
                    delay = self._retry_first_s
                    while True:
                        self.apply_batches(await consumer.getmany(timeout_ms=_POLL_TIMEOUT_MS))
                        self.progress.succeeded()
                        self._report_lag(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.progress.failed(repr(exc))
                logger.warning(
                    "cannot read the top topic; the quotes refresh keeps the last ids read",
                    extra={"topic": self.topic, "error": repr(exc), "retry_in_s": delay},
                )
            finally:
                await _stop_quietly(consumer)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max_s)

    def _report_lag(self, consumer: Any) -> None:
        """Expose the lag and note whether the reader advances while messages wait."""
        positions = {tp.partition: self._next_offsets.get(tp, 0) for tp in self._partitions}
        highwaters = {tp.partition: consumer.highwater(tp) for tp in self._partitions}
        waiting = any(
            highwater is not None and positions[partition] < highwater
            for partition, highwater in highwaters.items()
        )
        self.progress.observe(positions, waiting=waiting)
        if any(highwater is None for highwater in highwaters.values()):
            return  # no fetch answer yet for some partition
        lag = sum(max(0, hw - positions[p]) for p, hw in highwaters.items() if hw is not None)
        self._metrics.consumer_lag("ranked_ids", lag)

    async def _seek(self, consumer: Any) -> None:
        fresh = [tp for tp in self._partitions if tp not in self._next_offsets]
        for tp, offset in self._next_offsets.items():
            consumer.seek(tp, offset)
        if fresh:
            await consumer.seek_to_beginning(*fresh)


async def _stop_quietly(consumer: Any) -> None:
    try:
        await consumer.stop()
    except Exception as exc:  # closing a broken consumer must not mask the first error
        logger.debug("consumer stop failed", extra={"error": repr(exc)})
