"""run_web: 1 with a logged reason when startup fails, 0 after SIGTERM."""

from __future__ import annotations

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

from topcoins.settings import Settings
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
