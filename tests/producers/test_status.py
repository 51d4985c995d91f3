"""StatusReporter: the ProducerStatus after each poll, and sending it never fails a poll."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry

from tests.producers.conftest import API_KEY, Sink
from topcoins.producers.metrics import ProducerMetrics
from topcoins.producers.status import MAX_ERROR_CHARS, StatusReporter, one_line
from topcoins.schemas.codec import decode_as, encode
from topcoins.schemas.records import PriceQuote, PriceSnapshot, ProducerStatus

PROVIDER = "coinmarketcap"
AT = datetime(2024, 9, 17, 16, 0, 0, 123456, tzinfo=UTC)


def snapshot(n: int) -> PriceSnapshot:
    quote = PriceQuote(1, "BTC", "Bitcoin", "bitcoin", 1, 61137.27, 3.4e10, AT)
    return PriceSnapshot(f"snap-{n}", AT + timedelta(seconds=n), 9813, (quote,))


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def reporter(sink: Sink, registry: CollectorRegistry) -> StatusReporter:
    return StatusReporter(
        provider=PROVIDER,
        component="pricing-producer",
        interval=572.0,
        send=sink,
        metrics=ProducerMetrics(PROVIDER, registry),
        secrets=(API_KEY,),
    )


async def test_success_failure_success(registry):
    sink = Sink()
    status = reporter(sink, registry)

    await status.succeeded(AT, snapshot(1))
    await status.failed(AT + timedelta(minutes=10), "server", "HTTP 502")
    await status.failed(AT + timedelta(minutes=20), "timeout", "timed out")
    await status.succeeded(AT + timedelta(minutes=30), snapshot(2))

    first, _, second_failure, recovered = sink.sent
    assert first == ProducerStatus(
        provider=PROVIDER,
        component="pricing-producer",
        poll_interval_seconds=572.0,
        last_attempt_at=datetime(2024, 9, 17, 16, 0, 0, 123000, tzinfo=UTC),
        last_success_at=snapshot(1).fetched_at,
        last_snapshot_id="snap-1",
        last_error=None,
        last_error_kind=None,
        last_error_at=None,
        consecutive_failures=0,
    )
    assert second_failure.consecutive_failures == 2
    assert (second_failure.last_error, second_failure.last_error_kind) == ("timed out", "timeout")
    assert second_failure.last_snapshot_id == "snap-1"  # the last good snapshot stays named
    assert recovered.consecutive_failures == 0
    assert recovered.last_snapshot_id == "snap-2"
    assert recovered.last_error_kind == "timeout"  # the last failure is kept for observers
    assert status.current == recovered


async def test_a_failure_first_has_no_success(registry):
    sink = Sink()

    sent = await reporter(sink, registry).failed(AT, "auth", "set CMC_API_KEY")

    assert sent.last_success_at is None and sent.last_snapshot_id is None
    assert sent.consecutive_failures == 1
    assert decode_as(ProducerStatus, encode(sent)) == sent


async def test_the_error_is_one_line_short_and_never_holds_a_key(registry):
    sink = Sink()
    message = f"provider said:\n  key {API_KEY} is bad\t" + "x" * 1000

    sent = await reporter(sink, registry).failed(AT, "auth", message)

    assert sent.last_error is not None
    assert "\n" not in sent.last_error and "\t" not in sent.last_error
    assert API_KEY not in sent.last_error
    assert sent.last_error.startswith("provider said: key *** is bad x")
    assert len(sent.last_error) == MAX_ERROR_CHARS


@pytest.mark.parametrize("key", ["KEY-9f3a\n", "KEY-9f3a\r\n", "kéy-9f3a"])
def test_one_line_redacts_the_repr_and_bytes_forms_of_a_key(key):
    text = f"ServerError: Illegal header value {key.encode()!r} (key {key!r})"
    line = one_line(text, [key])
    assert "9f3a" not in line
    assert line == "ServerError: Illegal header value b'***' (key '***')"


def test_one_line_leaves_short_text_alone():
    assert one_line("HTTP 502") == "HTTP 502"


async def test_a_send_failure_is_logged_and_counted_never_raised(registry, caplog):
    sink = Sink(KafkaTimeoutError(), RuntimeError(f"boom {API_KEY}"))
    status = reporter(sink, registry)
    caplog.set_level(logging.WARNING)

    await status.succeeded(AT, snapshot(1))
    await status.failed(AT, "server", "HTTP 500")
    await status.succeeded(AT, snapshot(2))

    assert [s.last_snapshot_id for s in sink.sent] == ["snap-2"]
    failures = registry.get_sample_value(
        "topcoins_producer_status_publish_failures_total", {"provider": PROVIDER}
    )
    assert failures == 2
    assert "could not publish the producer status" in caplog.text
    assert all(API_KEY not in str(vars(record)) for record in caplog.records)
