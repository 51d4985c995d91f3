"""Faust's aiokafka transport with a configurable consumer fetch wait.

Faust 0.15 builds the worker's ``AIOKafkaConsumer`` with ``fetch_max_wait_ms=1500``
hard-coded (``AIOKafkaConsumerThread._create_worker_consumer``). A broker that does not
answer a waiting fetch as soon as data arrives (our dev broker, Tansu) then holds every
fetch for the full 1.5 s, so end-to-end latency is ~0.7 s on average; with a 5-20 ms wait
it is ~50 ms at p99.

``FetchWaitTransport`` keeps everything else of Faust's driver: its consumer thread lets
Faust build the consumer with all of Faust's settings, then replaces the fetch wait before
the consumer starts (aiokafka reads it in ``start()`` when it builds its fetcher). The App
uses it through the public ``app.transport`` setter; see ``topcoins.streams.app``.
"""

from __future__ import annotations

from typing import Any, cast

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import AppT
from yarl import URL

from topcoins.streams.errors import TransportError

__all__ = ["FetchWaitTransport"]

# The private attribute aiokafka 0.12-0.14 reads in ``AIOKafkaConsumer.start()``.
_FETCH_WAIT_ATTRIBUTE = "_fetch_max_wait_ms"


class _FetchWaitConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, building its consumer with the transport's fetch wait."""

    def _create_worker_consumer(
        self, transport: faust_aiokafka.Transport
    ) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        wait_ms = cast(FetchWaitTransport, transport).fetch_max_wait_ms
        set_fetch_max_wait(consumer, wait_ms)
        return consumer


class _FetchWaitConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with ``_FetchWaitConsumerThread``."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _FetchWaitConsumerThread(self, loop=self.loop, beacon=self.beacon)


class FetchWaitTransport(faust_aiokafka.Transport):
    """Faust's ``kafka://`` transport whose worker consumer waits ``fetch_max_wait_ms``."""

    Consumer = _FetchWaitConsumer

    def __init__(
        self, url: list[URL], app: AppT, *args: Any, fetch_max_wait_ms: int, **kwargs: Any
    ) -> None:
        if fetch_max_wait_ms <= 0:
            raise ValueError(f"fetch_max_wait_ms must be greater than 0, got {fetch_max_wait_ms}")
        super().__init__(url, app, *args, **kwargs)
        self.fetch_max_wait_ms = fetch_max_wait_ms


def set_fetch_max_wait(consumer: aiokafka.AIOKafkaConsumer, wait_ms: int) -> None:
    """Set the fetch wait of a consumer that has not started yet."""
    if not isinstance(getattr(consumer, _FETCH_WAIT_ATTRIBUTE, None), int):
        raise TransportError(
            f"aiokafka {aiokafka.__version__} has no AIOKafkaConsumer.{_FETCH_WAIT_ATTRIBUTE}: "
            "the worker cannot shorten Faust's 1500 ms fetch wait. Pin aiokafka<0.15 or "
            "update topcoins.streams.transport for this version."
        )
    if getattr(consumer, "_fetcher", None) is not None:
        raise TransportError("the consumer already started; set the fetch wait before start()")
    setattr(consumer, _FETCH_WAIT_ATTRIBUTE, wait_ms)
