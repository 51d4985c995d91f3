"""create_app: the lifespan starts and stops the replica; the default replica is Kafka's."""

from __future__ import annotations

from types import TracebackType

import pytest
from starlette.applications import Starlette

from tests.web.factories import BUILD, TestClient
from topcoins.settings import Settings
from topcoins.web.app import create_app
from topcoins.web.replica import StaticReplica, TopListReplica
from topcoins.web.view import TopListView


class RecordingReplica(StaticReplica):
    def __init__(self, view: TopListView | None = None, fail_on_start: bool = False) -> None:
        super().__init__(view)
        self.events: list[str] = []
        self.fail_on_start = fail_on_start

    async def __aenter__(self) -> RecordingReplica:
        self.events.append("start")
        if self.fail_on_start:
            raise ConnectionError("no broker")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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
        "/metrics",
        "/diagnostics",
    ]
