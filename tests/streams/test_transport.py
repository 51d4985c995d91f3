"""The worker's consumer uses CONSUMER_FETCH_WAIT_MS instead of Faust's 1500 ms."""

from __future__ import annotations

import aiokafka
import pytest
from prometheus_client import CollectorRegistry

from topcoins.settings import Settings
from topcoins.streams.app import build_worker
from topcoins.streams.errors import TransportError
from topcoins.streams.transport import FetchWaitTransport, set_fetch_max_wait


async def test_worker_consumer_gets_the_configured_fetch_wait():
    settings = Settings(consumer_fetch_wait_ms=7, worker_session_timeout_seconds=6.0)
    worker = build_worker(settings, registry=CollectorRegistry())
    assert isinstance(worker.app.transport, FetchWaitTransport)

    thread = worker.app.consumer._thread
    consumer = thread._create_worker_consumer(worker.app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 7
        assert consumer._session_timeout_ms == 6000  # Faust's other settings still apply
    finally:
        await consumer.stop()


async def test_fetch_wait_cannot_change_after_start():
    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    consumer._fetcher = object()  # what start() sets
    try:
        with pytest.raises(TransportError, match="already started"):
            set_fetch_max_wait(consumer, 5)
    finally:
        consumer._fetcher = None
        await consumer.stop()


def test_missing_aiokafka_attribute_is_explained():
    class NotAConsumer:
        pass

    with pytest.raises(TransportError, match="cannot shorten Faust's 1500 ms fetch wait"):
        set_fetch_max_wait(NotAConsumer(), 5)  # type: ignore[arg-type]


def test_fetch_wait_must_be_positive():
    worker = build_worker(Settings(), registry=CollectorRegistry())

    with pytest.raises(ValueError, match="greater than 0"):
        FetchWaitTransport(worker.app.conf.broker_consumer, worker.app, fetch_max_wait_ms=0)
