"""topcoins.tracing: off by default, trace context in Kafka headers, ids in log lines."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from topcoins import tracing
from topcoins.logs import JsonFormatter
from topcoins.tracing import (
    TraceContextFilter,
    configure_tracing,
    context_from_headers,
    inject_headers,
    span_context_from_headers,
    start_span,
)

BASE = [("producer", b"pricing-producer"), ("snapshot_id", b"s-1")]


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
        {"OTEL_TRACES_EXPORTER": "zipkin-typo"},
    ],
)
def test_without_an_exporter_tracing_stays_off(env):
    assert configure_tracing("web", env) is False
    assert not tracing.enabled()


def test_when_off_spans_are_a_shared_no_op_and_headers_are_untouched():
    assert start_span("poll") is start_span("join")
    with start_span("poll") as span:
        assert span is None
        assert inject_headers(BASE) is BASE
    assert (
        context_from_headers([("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")])
        is None
    )


def test_the_current_span_travels_in_the_headers(spans):
    with start_span("publish prices", kind="producer") as span:
        headers = inject_headers(BASE)
    sent = span.get_span_context()

    assert headers[:2] == BASE
    traceparent = dict(headers)["traceparent"].decode()
    assert traceparent.startswith(f"00-{sent.trace_id:032x}-{sent.span_id:016x}-")
    received = span_context_from_headers(headers)
    assert received is not None and received.is_remote
    assert (received.trace_id, received.span_id) == (sent.trace_id, sent.span_id)


def test_a_span_started_from_headers_continues_their_trace(spans):
    with start_span("write top topic") as writer:
        headers = inject_headers([])
    with start_span("apply generation", context=context_from_headers(headers)):
        pass

    applied = next(s for s in spans.get_finished_spans() if s.name == "apply generation")
    assert applied.context.trace_id == writer.get_span_context().trace_id
    assert applied.parent is not None
    assert applied.parent.span_id == writer.get_span_context().span_id


@pytest.mark.parametrize(
    "headers",
    [
        None,
        [],
        [("traceparent", b"not-a-traceparent")],
        [("traceparent", b"\xff\xfe")],
        [("traceparent", None)],
        [("broken",)],
        {"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"},
    ],
)
def test_missing_or_malformed_trace_context_is_no_link(spans, headers):
    assert span_context_from_headers(headers) is None


def test_headers_as_a_mapping_are_read_too(spans):
    with start_span("publish") as span:
        carrier = dict(inject_headers([]))
    assert span_context_from_headers(carrier).span_id == span.get_span_context().span_id


def _log_line(record_inside_span: bool) -> dict:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("web"))
    handler.addFilter(TraceContextFilter())
    logger = logging.getLogger("tests.tracing")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        if record_inside_span:
            with start_span("GET /?at"):
                logger.warning("inside")
        else:
            logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    return json.loads(stream.getvalue())


def test_log_lines_carry_the_active_span_ids(spans):
    line = _log_line(record_inside_span=True)

    (span,) = spans.get_finished_spans()
    assert line["trace_id"] == f"{span.context.trace_id:032x}"
    assert line["span_id"] == f"{span.context.span_id:016x}"


def test_log_lines_without_a_span_have_no_trace_fields(spans):
    line = _log_line(record_inside_span=False)
    assert "trace_id" not in line and "span_id" not in line


def test_configure_logging_adds_the_trace_filter():
    from topcoins.logs import configure_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("web", "INFO")
        (handler,) = root.handlers
        assert any(isinstance(f, TraceContextFilter) for f in handler.filters)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver that keeps what it was sent."""

    received: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


SPAN_SCRIPT = """
from opentelemetry import trace
from topcoins.tracing import configure_tracing, start_span
assert configure_tracing("web")
with start_span("GET /?at", kind="server"):
    pass
trace.get_tracer_provider().shutdown()
"""


@pytest.mark.e2e
def test_an_otlp_endpoint_receives_the_spans_and_console_prints_them():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=topcoins",
        "OTEL_TRACES_EXPORTER": "otlp,console",
    }
    env.pop(tracing.TRACE_DIR_ENV, None)
    env.pop("OTEL_SERVICE_NAME", None)
    try:
        result = subprocess.run(
            [sys.executable, "-c", SPAN_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr[-2000:]

    (path, headers, body) = _Collector.received[-1]
    assert path == "/v1/traces"
    assert headers["x-tenant"] == "topcoins"
    request = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "topcoins-web"
    assert [s.name for ss in resource_spans.scope_spans for s in ss.spans] == ["GET /?at"]
    printed = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [span["name"] for span in printed] == ["GET /?at"]
