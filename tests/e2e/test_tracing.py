"""Tracing across processes: one generation's trace, from both polls to every replica.

Every component writes its spans as JSON lines (``TOPCOINS_TRACE_DIR``, the test/debug
file exporter of ``topcoins.tracing``). The meta of a generation on the top topic names,
in its ``traceparent`` header, the worker's write; that trace holds the worker's join,
which links to one pricing poll and one ranking poll (each with the HTTP client span of
its provider call under it), and the web's apply of that meta. It runs on one broker kind.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import read_topic, topics
from topcoins.schemas.topics import META_KEY
from topcoins.tracing import TRACE_DIR_ENV

pytestmark = pytest.mark.e2e

TRACE_DEADLINE_SECONDS = 20


@dataclass(frozen=True)
class Span:
    """One exported span, with the component (file name) that wrote it."""

    component: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str | None
    links: tuple[str, ...]  # the linked span ids
    attributes: dict


def read_spans(directory: Path) -> list[Span]:
    spans = []
    for path in sorted(directory.glob("*.jsonl")):
        component = path.stem.rsplit("-", 1)[0]
        for line in path.read_text().splitlines():
            if not line.strip():
                continue  # a line being written
            raw = json.loads(line)
            spans.append(
                Span(
                    component=component,
                    name=raw["name"],
                    kind=raw["kind"],
                    trace_id=raw["context"]["trace_id"].removeprefix("0x"),
                    span_id=raw["context"]["span_id"].removeprefix("0x"),
                    parent_id=(raw["parent_id"] or "").removeprefix("0x") or None,
                    links=tuple(
                        link["context"]["span_id"].removeprefix("0x") for link in raw["links"]
                    ),
                    attributes=raw["attributes"],
                )
            )
    return spans


def _meta_traceparents(bootstrap_servers: str, topic: str) -> list[str]:
    """The ``traceparent`` header of every meta on the top topic so far, in order."""
    found: list[str] = []
    for message in read_topic(bootstrap_servers, topic, timeout=10):
        headers = dict(message.headers)
        if message.key == META_KEY.encode() and "traceparent" in headers:
            found.append(headers["traceparent"].decode())
    return found


def poll_of(spans: list[Span], linked_id: str) -> tuple[Span, Span]:
    """The publish span a link points at and the poll span above it."""
    (publish,) = [s for s in spans if s.span_id == linked_id]
    (poll,) = [s for s in spans if s.span_id == publish.parent_id]
    return publish, poll


def whole_trace(spans: list[Span], traceparent: str) -> dict[str, object] | None:
    """The generation's trace as the test expects it, or None while a part is missing."""
    _, trace_id, write_id, _ = traceparent.split("-")
    by_id = {s.span_id: s for s in spans}
    write = by_id.get(write_id)
    if write is None or write.parent_id not in by_id:
        return None
    join = by_id[write.parent_id]
    polls = {}
    for linked in join.links:
        if linked not in by_id or by_id[linked].parent_id not in by_id:
            return None
        publish, poll = poll_of(spans, linked)
        clients = [s for s in spans if s.parent_id == poll.span_id and s.kind == "SpanKind.CLIENT"]
        polls[poll.component] = (publish, poll, clients)
    applies = [s for s in spans if s.name == "apply generation" and s.parent_id == write_id]
    if len(polls) < 2 or not applies or not all(clients for _, _, clients in polls.values()):
        return None
    return {"trace_id": trace_id, "write": write, "join": join, "polls": polls, "applies": applies}


def test_one_generation_is_one_trace_from_both_polls_to_the_web(stack_factory, broker, tmp_path):
    if broker.kind == "apache-kafka":
        pytest.skip("trace context rides in plain Kafka headers: one broker kind (tansu) suffices")
    trace_dir = tmp_path / "traces"
    stack = stack_factory(**{TRACE_DIR_ENV: str(trace_dir)})
    assert stack.wait_ready(120), "the web service did not become ready within 120 s"

    found = None
    deadline = time.monotonic() + TRACE_DEADLINE_SECONDS
    while found is None and time.monotonic() < deadline:
        traceparents = _meta_traceparents(
            stack.settings.kafka_bootstrap_servers, topics(stack).top.name
        )
        spans = read_spans(trace_dir)
        for traceparent in reversed(traceparents):
            found = whole_trace(spans, traceparent)
            if found is not None:
                break
        else:
            time.sleep(1)
    assert found is not None, "no generation on the top topic has a complete trace"

    assert found["write"].component == "stream-worker" and found["write"].name == "write top topic"
    assert found["join"].name == "join" and found["join"].trace_id == found["trace_id"]
    polls = found["polls"]
    assert set(polls) == {"pricing-producer", "ranking-producer"}
    for component, provider in (
        ("pricing-producer", "coinmarketcap"),
        ("ranking-producer", "cryptocompare"),
    ):
        publish, poll, clients = polls[component]
        assert publish.name.startswith("publish ") and publish.kind == "SpanKind.PRODUCER"
        assert poll.name == "poll" and poll.attributes["topcoins.provider"] == provider
        assert all(c.component == component for c in clients)
    (apply,) = found["applies"]
    assert apply.component == "web" and apply.trace_id == found["trace_id"]

    moment = (datetime.now(UTC) - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    response = httpx.get(f"{stack.web_url}/", params={"limit": 5, "at": moment}, timeout=10)
    assert response.status_code == 200
    served = [s for s in read_spans(trace_dir) if s.name == "GET /?at"]
    assert [(s.component, s.kind) for s in served] == [("web", "SpanKind.SERVER")]
