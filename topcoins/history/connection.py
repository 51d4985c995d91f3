"""The history reader's connection to Kafka: one consumer without a consumer group.

It assigns the raw topics' partitions itself and commits nothing, so the running worker is
not disturbed. The consumer connects on first use; ``reading()`` turns a broker failure
into ``HistoryReadError`` and drops the consumer, so the next question reconnects.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from topcoins.history import fetch
from topcoins.history.errors import HistoryReadError, HistoryUnavailable
from topcoins.history.raw_topics import RawRecord, RawTopic
from topcoins.topic_reader import group_less_consumer, stop_quietly

__all__ = ["Connection"]

_FETCH_BYTES = 16 * 1024


class Connection:
    """A group-less consumer of the raw topics, connected on first use.

    ``timeout_s`` bounds each broker wait; ``client_options`` are the security options
    (``kafka_client_options``)."""

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        *,
        client_id: str,
        fetch_wait_ms: int,
        timeout_s: float,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.timeout_s = timeout_s
        self._client_id = client_id
        self._fetch_wait_ms = fetch_wait_ms
        self._client_options = dict(client_options or {})
        self._consumer: AIOKafkaConsumer | None = None
        self._assigned: frozenset[TopicPartition] = frozenset()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """The connected consumer (``partition()`` connects it)."""
        assert self._consumer is not None, "connect first (partition() does)"
        return self._consumer

    async def partition(self, topic: RawTopic) -> TopicPartition:
        """The topic's partition, assigned (and paused) on the consumer."""
        tp = topic.tp
        if tp in self._assigned:
            return tp
        consumer = await self._connected()
        # Never assign a missing topic: the metadata request could auto-create it.
        if topic.name not in await consumer.topics():
            raise HistoryUnavailable(
                f"topic {topic.name} does not exist on {self.bootstrap_servers}: no "
                f"{topic.kind} snapshot was ever published with this TOPIC_PREFIX"
            )
        self._assigned = self._assigned | {tp}
        consumer.assign(sorted(self._assigned))
        consumer.pause(*self._assigned)
        return tp

    async def begin(self, tp: TopicPartition) -> int:
        """The log start offset: > 0 once retention deleted something."""
        return (await self.consumer.beginning_offsets([tp]))[tp]

    async def fetch(self, tp: TopicPartition, offset: int) -> list[RawRecord]:
        """The records one fetch returns from ``offset`` on; [] if the partition ends first."""
        return await fetch.fetch(
            self.consumer, tp, offset, timeout_s=self.timeout_s, where=str(self.bootstrap_servers)
        )

    def batches(
        self, tp: TopicPartition, start: int, stop: int | None
    ) -> AsyncGenerator[list[RawRecord], None]:
        """Record batches from ``start`` to ``stop`` (exclusive), or to the current end."""
        return fetch.batches(
            self.consumer,
            tp,
            start,
            stop,
            timeout_s=self.timeout_s,
            where=str(self.bootstrap_servers),
        )

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        """Translates broker failures inside into ``HistoryReadError``, dropping the
        consumer so that the next question reconnects."""
        try:
            yield
        except (KafkaError, OSError) as exc:
            await self.drop()
            raise HistoryReadError(
                f"reading the raw topics from {self.bootstrap_servers} failed: {exc!r}"
            ) from exc
        except HistoryReadError:
            await self.drop()
            raise

    async def drop(self) -> None:
        """Close the consumer, if any (a failure to close is logged, never raised); the
        next ``partition()`` connects again."""
        consumer, self._consumer = self._consumer, None
        self._assigned = frozenset()
        if consumer is not None:
            await stop_quietly(consumer)

    async def _connected(self) -> AIOKafkaConsumer:
        if self._consumer is not None:
            return self._consumer
        # No group: the worker's offsets and assignment stay untouched.
        consumer = group_less_consumer(
            self.bootstrap_servers,
            self._client_id,
            self._client_options,
            fetch_max_wait_ms=self._fetch_wait_ms,
            max_partition_fetch_bytes=_FETCH_BYTES,
            fetch_max_bytes=_FETCH_BYTES,
            request_timeout_ms=int(self.timeout_s * 1000),
        )
        try:
            await consumer.start()
        except BaseException:
            await stop_quietly(consumer)
            raise
        self._consumer = consumer
        return consumer
