"""run_web: 1 with a logged reason when startup fails, 0 after SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from topcoins.settings import Settings
from topcoins.web import main
from topcoins.web.main import run_web


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_port_in_use_returns_1(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = Settings(
            web_host="127.0.0.1", web_port=port, kafka_bootstrap_servers="127.0.0.1:1"
        )
        assert run_web(settings) == 1
    err = capsys.readouterr().err
    assert '"component": "web"' in err
    assert "web failed to start" in err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.e2e  # runs the web in another process
def test_sigterm_stops_cleanly_with_status_0() -> None:
    port = free_port()
    # The web process reads its environment in main(), like `topcoins web` does.
    env = {
        **os.environ,
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(port),
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "LOG_LEVEL": "INFO",
    }
    code = (
        "import os, sys\n"
        "from topcoins.settings import Settings\n"
        "from topcoins.web.main import run_web\n"
        "sys.exit(run_web(Settings.from_env(os.environ)))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the web process never answered /healthz"
            assert process.poll() is None, process.communicate()[1].decode()
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err.decode()
    assert b'"msg": "web stopped"' in err


def test_run_web_serves_with_uvloop_and_httptools(
    monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    seen: list[tuple[str, str, str]] = []

    async def record_config(server: uvicorn.Server, sockets: object = None) -> None:
        loop = type(asyncio.get_running_loop())
        seen.append((server.config.loop, server.config.http, loop.__module__))
        server.started = True

    monkeypatch.setattr(main._Server, "serve", record_config)
    settings = Settings(web_host="127.0.0.1", kafka_bootstrap_servers="127.0.0.1:1")
    assert main.run_web(settings) == 0
    assert seen == [("uvloop", "httptools", "uvloop")]


def test_the_server_limits_its_connections() -> None:
    # Open streams have a budget of their own on top of the other requests' one.
    settings = Settings(web_limit_concurrency=7, web_stream_max=3)
    assert main.server_config(lambda scope, receive, send: None, settings).limit_concurrency == 10


@pytest.mark.e2e  # a real server: about 1 s
async def test_shutting_down_ends_open_streams_at_once() -> None:
    """Without closing them first, graceful shutdown would wait timeout_graceful_shutdown."""
    from tests.web.factories import BUILD, SAMPLE_ROWS, FakeHistory, join_of, view_of
    from tests.web.replicas import StaticReplica
    from topcoins.web.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(web_host="127.0.0.1", web_port=port)
    history = FakeHistory(join_of(SAMPLE_ROWS))
    app = create_app(settings, StaticReplica(view_of(SAMPLE_ROWS)), build=BUILD, history=history)
    server = main._Server(
        main.server_config(app, settings), before_shutdown=app.state.stream_hub.close
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}/stream"
    async with httpx.AsyncClient(timeout=5) as client, client.stream("GET", url) as stream:
        lines = stream.aiter_lines()
        assert (await anext(lines)).startswith("id: ")
        started = time.monotonic()
        server.should_exit = True
        rest = [line async for line in lines]  # the response ends cleanly
        await asyncio.wait_for(serving, 5)
    assert time.monotonic() - started < 2.0
    assert rest[0].startswith("data: ")
