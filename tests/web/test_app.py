"""create_app: the lifespan starts and stops the replica and the history reader; by
default both read Kafka."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.applications import Starlette

from tests.web.factories import BUILD, SAMPLE_ROWS, Clock, FakeHistory, TestClient, join_of
from tests.web.replicas import StaticReplica
from topcoins.history import HistoryReader
from topcoins.settings import Settings
from topcoins.web.app import create_app
from topcoins.web.history import HistoricalLists
from topcoins.web.replica import TopListReplica
from topcoins.web.view import TopListView


class RecordingReplica(StaticReplica):
    def __init__(self, view: TopListView | None = None, fail_on_start: bool = False) -> None:
        super().__init__(view)
        self.events: list[str] = []
        self.fail_on_start = fail_on_start

    async def start(self) -> None:
        self.events.append("start")
        if self.fail_on_start:
            raise ConnectionError("no broker")

    async def stop(self) -> None:
        self.events.append("stop")


def test_lifespan_starts_and_stops_the_replica(sample_view: TopListView) -> None:
    replica = RecordingReplica(sample_view)
    app = create_app(Settings(), replica, build=BUILD)
    assert isinstance(app, Starlette)
    with TestClient(app) as client:
        assert replica.events == ["start"]
        assert client.get("/?limit=1").status_code == 200
    assert replica.events == ["start", "stop"]


def test_a_replica_start_failure_fails_startup() -> None:
    replica = RecordingReplica(fail_on_start=True)
    app = create_app(Settings(), replica, build=BUILD)
    with pytest.raises(ConnectionError, match="no broker"), TestClient(app):
        pass
    assert replica.events == ["start"]


def test_default_replica_reads_the_prefixed_top_topic() -> None:
    app = create_app(Settings(topic_prefix="acme"), build=BUILD)
    (route,) = [r for r in app.routes if r.path == "/"]  # type: ignore[attr-defined]
    replica = route.endpoint.renderer.replica
    assert isinstance(replica, TopListReplica)
    assert replica.topic == "acme.top.v1"
    assert not replica.running  # nothing starts before the lifespan runs


def test_routes() -> None:
    app = create_app(Settings(), StaticReplica(), build=BUILD)
    assert [r.path for r in app.routes] == [  # type: ignore[attr-defined]
        "/",
        "/healthz",
        "/readyz",
        "/status",
        "/version",
        "/stream",
        "/dashboard",
        "/metrics",
        "/diagnostics",
        "/openapi.json",
    ]


def historical_of(app: Starlette) -> HistoricalLists:
    (route,) = [r for r in app.routes if r.path == "/"]  # type: ignore[attr-defined]
    return route.endpoint.history


async def test_lifespan_opens_and_closes_the_history_reader(sample_view: TopListView) -> None:
    app = create_app(Settings(topic_prefix="acme"), StaticReplica(sample_view), build=BUILD)
    historical = historical_of(app)
    assert historical.reader is None  # nothing is created before the lifespan runs
    with TestClient(app):
        reader = historical.reader
        assert isinstance(reader, HistoryReader)
        assert reader.bootstrap_servers == ["localhost:9092"]
        assert reader.aliases.entries  # the worker's shipped alias table
    assert historical.reader is None
    with pytest.raises(RuntimeError, match="HistoryReader was stopped"):
        await reader.top_list_at(datetime(2024, 5, 1, tzinfo=UTC))


def test_a_given_history_is_used_as_is(sample_view: TopListView) -> None:
    history = FakeHistory(join_of(SAMPLE_ROWS))  # no __aenter__: the app must not open it
    app = create_app(Settings(), StaticReplica(sample_view), build=BUILD, history=history)
    with TestClient(app) as client:
        assert historical_of(app).reader is history
        assert client.get("/?at=2024-05-01T12:00:10Z").status_code == 200
    assert historical_of(app).reader is history
    assert len(history.asked) == 1


def test_the_default_reader_refuses_the_future_by_the_apps_clock(
    sample_view: TopListView,
) -> None:
    # The app's clock says 2024-05-01T12:00:30.25Z; no broker is needed to refuse 12:01.
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9")
    app = create_app(settings, StaticReplica(sample_view), build=BUILD, clock=Clock())
    with TestClient(app) as client:
        response = client.get("/?at=2024-05-01T12:01:00Z")
    assert response.status_code == 400
    assert response.json() == {
        "error": "at_in_future",
        "detail": "2024-05-01T12:01:00.000Z is in the future (now is 2024-05-01T12:00:30.250Z): "
        "there is no list for it yet; ask for a past moment",
    }


def test_the_default_reader_without_a_broker_is_a_503(sample_view: TopListView) -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9")  # the discard port: refused
    app = create_app(settings, StaticReplica(sample_view), build=BUILD, clock=Clock())
    with TestClient(app) as client:
        response = client.get("/?at=2024-05-01T12:00:00Z")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json()["error"] == "history_read_failed"
        assert client.get("/?limit=1").status_code == 200  # the live list is unaffected
