"""Publishes snapshots to Kafka: Avro single-object values, provider keys, metadata headers.

Sizing: a 5000-quote CoinMarketCap snapshot encodes to roughly 0.3-0.4 MB. The producer
allows records up to ``MAX_REQUEST_SIZE`` (4 MiB, checked on the uncompressed record) and
gzip-compresses batches (gzip is the only codec aiokafka has without extra packages), so
what reaches the broker stays well under Kafka's default ``max.message.bytes`` (~1 MB).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import avro.errors
from aiokafka import AIOKafkaProducer

from topcoins.lifecycle import AsyncLifecycle, LifecycleState
from topcoins.producers.errors import BadResponseError
from topcoins.producers.metrics import timed_stage
from topcoins.schemas.codec import encode
from topcoins.schemas.records import ProducerStatus, Snapshot
from topcoins.tracing import inject_headers, start_span

__all__ = ["HEADER_NAMES", "MAX_REQUEST_SIZE", "SnapshotPublisher", "headers_for"]

MAX_REQUEST_SIZE = 4 * 1024 * 1024
HEADER_NAMES = ("producer", "fetched_at", "snapshot_id", "schema")


def headers_for(component: str, record: Snapshot) -> list[tuple[str, bytes]]:
    """The Kafka headers of one snapshot message (UTF-8 values)."""
    values = (
        component,
        record.fetched_at.isoformat(timespec="milliseconds"),
        record.snapshot_id,
        type(record).__name__,
    )
    return [(name, value.encode()) for name, value in zip(HEADER_NAMES, values, strict=True)]


class SnapshotPublisher(AsyncLifecycle):
    """``async with SnapshotPublisher(servers, "pricing-producer") as p: await p.publish(...)``.

    Durable: ``acks="all"``. The idempotent producer is off by default because Tansu
    (our development broker, memory storage) fails ``InitProducerId``; Apache Kafka
    supports it (``enable_idempotence=True``, chosen by ``KAFKA_IDEMPOTENCE``, see
    ``topcoins.kafka_access.use_idempotence``). Without it a retried send may write a
    snapshot twice; both copies carry the same ``snapshot_id``. ``client_options`` are the
    security options (``kafka_client_options``). No linger: a poll publishes one snapshot,
    so waiting for more messages would only delay it. ``stop()`` flushes and is safe to
    call twice; a stopped publisher cannot be started again.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        component: str,
        *,
        enable_idempotence: bool = False,
        compression_type: str | None = "gzip",
        linger_ms: int = 0,
        max_request_size: int = MAX_REQUEST_SIZE,
        request_timeout_ms: int = 30000,
        producer_factory: Callable[..., AIOKafkaProducer] = AIOKafkaProducer,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.component = component
        self._config: dict[str, Any] = {
            **(client_options or {}),
            "bootstrap_servers": bootstrap_servers,
            "client_id": component,
            "acks": "all",
            "enable_idempotence": enable_idempotence,
            "compression_type": compression_type,
            "linger_ms": linger_ms,
            "max_request_size": max_request_size,
            "request_timeout_ms": request_timeout_ms,
        }
        self._factory = producer_factory
        self._producer: AIOKafkaProducer | None = None

    @property
    def started(self) -> bool:
        """True between a successful ``start()`` and ``stop()``."""
        return self.lifecycle is LifecycleState.STARTED

    async def _start(self) -> None:
        """Connect to the cluster; raises aiokafka's error when no broker answers."""
        producer = self._factory(**self._config)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def _stop(self) -> None:
        """Flush pending messages and disconnect."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    def _started_producer(self) -> AIOKafkaProducer:
        """The producer ``start()`` connected; raises ``RuntimeError`` before or after."""
        self._check_started()
        assert self._producer is not None  # set by ``_start``, cleared only by ``_stop``
        return self._producer

    async def publish(self, topic: str, key: bytes, record: Snapshot) -> int:
        """Encode ``record`` and wait until the broker acknowledged it; return its size.

        A record that does not fit its Avro schema raises ``BadResponseError`` (nothing is
        sent); Kafka failures raise aiokafka's ``KafkaError`` subclasses.
        """
        producer = self._started_producer()
        provider = key.decode(errors="replace")
        try:
            with timed_stage(provider, "encode"):
                value = encode(record)
        except (avro.errors.AvroException, ValueError, TypeError) as exc:
            raise BadResponseError(
                f"{type(record).__name__} {record.snapshot_id} does not fit its Avro schema: "
                f"{str(exc)[:200]}",
                provider=provider,
            ) from exc
        # The message timestamp is the fetch time, so "as of" lookups (offsets_for_times)
        # find the snapshot that was current at a given moment.
        # The publish span's trace context travels in the headers (``traceparent``), so
        # the worker's join links to it.
        with timed_stage(provider, "publish"), start_span(f"publish {topic}", kind="producer"):
            await producer.send_and_wait(
                topic,
                value=value,
                key=key,
                headers=inject_headers(headers_for(self.component, record)),
                timestamp_ms=int(record.fetched_at.timestamp() * 1000),
            )
        return len(value)

    async def publish_status(self, topic: str, key: bytes, status: ProducerStatus) -> int:
        """Send one ``ProducerStatus`` (timestamped at its attempt) and wait for the ack."""
        producer = self._started_producer()
        value = encode(status)
        headers = [("producer", self.component.encode()), ("schema", b"ProducerStatus")]
        await producer.send_and_wait(
            topic,
            value=value,
            key=key,
            headers=headers,
            timestamp_ms=int(status.last_attempt_at.timestamp() * 1000),
        )
        return len(value)
