"""OpenTelemetry tracing: off and free unless configured; W3C trace context in Kafka headers.

``configure_tracing(component)`` reads the standard ``OTEL_*`` variables once, at start-up:

* ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set: spans
  are exported over OTLP/HTTP (protobuf), batched; the exporter and the batch processor
  read the rest of their ``OTEL_EXPORTER_OTLP_*`` / ``OTEL_BSP_*`` variables themselves;
* ``OTEL_TRACES_EXPORTER``: ``otlp``, ``console`` (one JSON object per span on stderr, for
  debugging) or ``none``, comma-separated; it wins over the endpoint rule above;
* ``OTEL_SDK_DISABLED=true``: off, whatever else is set;
* ``OTEL_SERVICE_NAME`` (default ``topcoins-<component>``), ``OTEL_RESOURCE_ATTRIBUTES``
  and ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` as the SDK defines them;
* ``TOPCOINS_TRACE_DIR`` (tests and debugging only): every finished span is also written,
  at once, as one JSON line to ``<dir>/<component>-<pid>.jsonl``.

Otherwise nothing is installed: ``start_span`` returns a shared ``nullcontext``, header
helpers return their input, and no OpenTelemetry SDK module is even imported.

Propagation: ``inject_headers`` appends the current span's ``traceparent`` (and
``tracestate``, baggage) to a Kafka header list; ``span_context_from_headers`` and
``context_from_headers`` read them back from a consumed message's headers (a list of
``(str, bytes)`` pairs, as aiokafka and Faust give them, or a mapping).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.trace import Link, SpanContext, Tracer

__all__ = [
    "TRACE_DIR_ENV",
    "TraceContextFilter",
    "activate",
    "configure_tracing",
    "context_from_headers",
    "enabled",
    "inject_headers",
    "links_to",
    "span_context_from_headers",
    "start_span",
]

logger = logging.getLogger(__name__)

# Test/debug only: a directory that receives every span as JSON lines, one file per process.
TRACE_DIR_ENV = "TOPCOINS_TRACE_DIR"
_EXPORTERS = ("otlp", "console", "none")

_tracer: Tracer | None = None
_NULL: AbstractContextManager[None] = nullcontext()

Headers = Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None


def enabled() -> bool:
    """True once spans are recorded (``configure_tracing`` or ``activate``)."""
    return _tracer is not None


def _exporter_names(env: Mapping[str, str]) -> list[str]:
    named = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    names = [n for n in named if n]
    if not names and (
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        names = ["otlp"]
    unknown = [n for n in names if n not in _EXPORTERS]
    if unknown:
        logger.warning(
            "unknown OTEL_TRACES_EXPORTER ignored",
            extra={"unknown": unknown, "supported": list(_EXPORTERS)},
        )
    return [n for n in names if n in _EXPORTERS and n != "none"]


def configure_tracing(component: str, env: Mapping[str, str] | None = None) -> bool:
    """Install an SDK ``TracerProvider`` for ``component`` when the environment asks for
    one (see the module docstring); return whether tracing is on. Call once, early."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    names = _exporter_names(env)
    trace_dir = env.get(TRACE_DIR_ENV)
    if not names and not trace_dir:
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    # Given attributes win over OTEL_SERVICE_NAME in Resource.create, so name it only if unset.
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: f"topcoins-{component}"}
    provider = TracerProvider(resource=Resource.create(attributes))
    if "otlp" in names:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if "console" in names:
        provider.add_span_processor(
            SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr, formatter=_json_line))
        )
    if trace_dir:
        path = Path(trace_dir) / f"{component}-{os.getpid()}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        out = path.open("a", buffering=1, encoding="utf-8")  # closed at exit
        provider.add_span_processor(
            SimpleSpanProcessor(ConsoleSpanExporter(out=out, formatter=_json_line))
        )
    trace.set_tracer_provider(provider)
    _instrument_httpx(provider)
    activate(provider)
    logger.info(
        "tracing on",
        extra={"exporters": names + (["file"] if trace_dir else []), "component": component},
    )
    return True


def _instrument_httpx(provider: TracerProvider) -> None:
    """Give every httpx request a client span (and a ``traceparent`` header)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)


def _json_line(span: ReadableSpan) -> str:
    return span.to_json(indent=None) + "\n"


def activate(provider: TracerProvider | None) -> None:
    """Record topcoins' spans with ``provider`` from now on; None turns tracing off again
    (tests use this with an in-memory exporter)."""
    global _tracer
    _tracer = None if provider is None else provider.get_tracer("topcoins")


def start_span(
    name: str,
    *,
    kind: str = "internal",
    links: list[Link] | None = None,
    context: Context | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> AbstractContextManager[Any]:
    """``with start_span("poll"):`` a current span; a shared no-op when tracing is off.

    ``kind``: ``internal``, ``server``, ``client``, ``producer`` or ``consumer``."""
    tracer = _tracer
    if tracer is None:
        return _NULL
    from opentelemetry.trace import SpanKind

    return tracer.start_as_current_span(
        name,
        context=context,
        kind=SpanKind[kind.upper()],
        links=links,
        attributes=attributes,
    )


def inject_headers(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """``headers`` plus the current trace context (``traceparent`` ...); ``headers`` itself
    when tracing is off or no span is active."""
    if _tracer is None:
        return headers
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if not carrier:
        return headers
    return [*headers, *((name, value.encode()) for name, value in carrier.items())]


def context_from_headers(headers: Headers) -> Context | None:
    """The trace context carried by Kafka message headers; None when tracing is off.

    A missing or malformed ``traceparent`` gives an empty context (a new trace)."""
    if _tracer is None:
        return None
    from opentelemetry import propagate

    return propagate.extract(_carrier(headers))


def span_context_from_headers(headers: Headers) -> SpanContext | None:
    """The remote span that wrote a message (for span links); None if absent or off."""
    context = context_from_headers(headers)
    if context is None:
        return None
    from opentelemetry import trace

    span_context = trace.get_current_span(context).get_span_context()
    return span_context if span_context.is_valid else None


def links_to(span_contexts: Iterable[SpanContext | None]) -> list[Link]:
    """Span links to each known span context (None entries are left out)."""
    from opentelemetry.trace import Link

    return [Link(sc) for sc in span_contexts if sc is not None]


def _carrier(headers: Headers) -> dict[str, str]:
    if not headers:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    carrier: dict[str, str] = {}
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            continue
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if isinstance(name, str) and isinstance(value, str):
            carrier[name.lower()] = value
    return carrier


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex) to a record logged while a span is active."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _tracer is None:
            return True
        from opentelemetry import trace

        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
        return True
