"""Web test fixtures: the sample view and one client factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tests.web.factories import BUILD, SAMPLE_ROWS, Clock, TestClient, view_of
from tests.web.replicas import StaticReplica
from topcoins.settings import Settings
from topcoins.web.app import create_app
from topcoins.web.replica import Replica
from topcoins.web.view import TopListView


@pytest.fixture
def sample_view() -> TopListView:
    """The five-asset sample generation."""
    return view_of(SAMPLE_ROWS)


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def clock() -> Clock:
    """The clock ``make_client`` apps measure ages against; starts at ``factories.NOW``."""
    return Clock()


@pytest.fixture
def make_client(clock: Clock) -> Iterator[ClientFactory]:
    """``make_client(view_or_replica=None, settings=None, history=None)``: a TestClient with
    lifespan run, whose app reads the ``clock`` fixture."""
    with ExitStack() as clients:

        def factory(
            source: TopListView | Replica | None = None,
            settings: Settings | None = None,
            *,
            history: Any = None,
            **client_args: Any,
        ) -> TestClient:
            replica = StaticReplica(source) if isinstance(source, TopListView | None) else source
            app = create_app(
                settings or Settings(), replica, build=BUILD, clock=clock, history=history
            )
            return clients.enter_context(TestClient(app, **client_args))

        yield factory
