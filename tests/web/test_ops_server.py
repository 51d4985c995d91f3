"""``WEB_OPS_PORT``: ``/metrics`` and ``/diagnostics`` move off the public port."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.web.factories import BUILD, SAMPLE_ROWS, FakeHistory, TestClient, join_of
from tests.web.replicas import StaticReplica
from topcoins.brokers import free_port
from topcoins.settings import Settings
from topcoins.web.app import create_app
from topcoins.web.ops_server import OpsHTTPServer
from topcoins.web.view import TopListView


def test_with_an_ops_port_operator_endpoints_leave_the_public_port(
    sample_view: TopListView,
) -> None:
    port = free_port()
    settings = Settings(web_host="127.0.0.1", web_ops_port=port)
    history = FakeHistory(join_of(SAMPLE_ROWS))
    app = create_app(settings, StaticReplica(sample_view), build=BUILD, history=history)
    with TestClient(app) as public:
        for path in ("/metrics", "/diagnostics"):
            assert public.get(path).status_code == 404
        for path in ("/?limit=3", "/status", "/healthz", "/readyz", "/version"):
            assert public.get(path).status_code == 200, path
        ops = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert ops.status_code == 200
        assert "topcoins_web" in ops.text
        diagnostics = httpx.get(f"http://127.0.0.1:{port}/diagnostics")
        assert diagnostics.status_code == 200 and diagnostics.json()
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/?limit=3").status_code == 404
    with pytest.raises(httpx.ConnectError):  # stopped with the app
        httpx.get(f"http://127.0.0.1:{port}/healthz")


def test_without_an_ops_port_everything_is_on_the_public_port(sample_view: TopListView) -> None:
    app = create_app(
        Settings(),
        StaticReplica(sample_view),
        build=BUILD,
        history=FakeHistory(join_of(SAMPLE_ROWS)),
    )
    with TestClient(app) as public:
        assert public.get("/metrics").status_code == 200
        assert public.get("/diagnostics").status_code == 200


async def test_a_port_in_use_fails_the_start_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = OpsHTTPServer(lambda scope, receive, send: None, "127.0.0.1", port)
        with pytest.raises(OSError, match=f"WEB_OPS_PORT 127.0.0.1:{port}"):
            await server.start()
        await server.stop()
