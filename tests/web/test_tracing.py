"""The web's spans: ``apply generation`` continues the trace of the worker's write;
``GET /?at=`` is a server span."""

from __future__ import annotations

from opentelemetry.trace import SpanKind

from tests.web.factories import BUILD, SAMPLE_ROWS, FakeHistory, TestClient, join_of
from tests.web.fake_kafka import TP, generation, records
from tests.web.replicas import StaticReplica
from tests.web.test_history import AT, AT_MOMENT
from tests.web.test_replica import new_replica
from topcoins.settings import Settings
from topcoins.tracing import inject_headers, start_span
from topcoins.web.app import create_app
from topcoins.web.history import HistoricalLists
from topcoins.web.params import Format


def test_applying_a_meta_continues_the_writers_trace(spans):
    with start_span("write top topic") as write:
        headers = inject_headers([("producer", b"stream-worker")])
    messages = records(generation(SAMPLE_ROWS[:2]))
    messages[-1].headers = headers  # the meta; the rows need no span
    replica = new_replica()
    replica.apply_batches({TP: messages})

    assert replica.view is not None
    (applied,) = [s for s in spans.get_finished_spans() if s.name == "apply generation"]
    assert applied.context.trace_id == write.get_span_context().trace_id
    assert applied.parent.span_id == write.get_span_context().span_id


def test_a_meta_without_trace_context_starts_its_own_trace(spans):
    replica = new_replica()
    replica.apply_batches({TP: records(generation(SAMPLE_ROWS[:2]))})  # no headers at all

    (applied,) = [s for s in spans.get_finished_spans() if s.name == "apply generation"]
    assert applied.parent is None
    assert replica.view is not None


async def test_an_at_question_is_one_server_span(spans):
    history = HistoricalLists(FakeHistory(join_of(SAMPLE_ROWS[:2])))
    await history.response(AT_MOMENT, Format.JSON, 5)

    (served,) = spans.get_finished_spans()
    assert served.name == "GET /?at"
    assert served.kind is SpanKind.SERVER
    assert served.parent is None
    assert served.attributes["topcoins.at"] == "2024-05-01T12:00:10.000Z"


def test_an_at_request_with_a_traceparent_joins_the_callers_trace(spans, clock):
    history = FakeHistory(join_of(SAMPLE_ROWS[:2]))
    app = create_app(Settings(), StaticReplica(), build=BUILD, clock=clock, history=history)
    with start_span("client call") as caller:
        traceparent = dict(inject_headers([]))["traceparent"].decode()
    with TestClient(app) as client:
        response = client.get(f"/?at={AT}", headers={"traceparent": traceparent})

    assert response.status_code == 200
    (served,) = [s for s in spans.get_finished_spans() if s.name == "GET /?at"]
    assert served.context.trace_id == caller.get_span_context().trace_id
    assert served.parent.span_id == caller.get_span_context().span_id
