"""``DevStack.plan`` decisions that need no process: ports, hosts, the temporary directory."""

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from topcoins.brokers import free_port
from topcoins.dev import DevStack, PortInUseError

# Everything external: plan() then starts no broker and no emulator.
EXTERNAL = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
    "CMC_BASE_URL": "http://127.0.0.1:2",
    "CRYPTOCOMPARE_BASE_URL": "http://127.0.0.1:3",
}


@contextmanager
def listening(port: int) -> Iterator[None]:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            pass  # already taken by another process: busy all the same
        yield


def test_a_busy_web_port_that_was_set_is_refused_before_anything_starts():
    port = free_port()
    stack = DevStack({"WEB_PORT": str(port)})  # no broker given: one would be embedded
    with listening(port), pytest.raises(PortInUseError, match=f"WEB_PORT {port} is already in use"):
        stack.plan()
    assert stack.broker is None
    assert stack.supervisor.processes == {}


def test_a_busy_default_web_port_moves_to_a_free_one():
    stack = DevStack(EXTERNAL)
    with listening(6667):
        stack.plan()
    try:
        assert stack.settings.web_port != 6667
        assert stack.web_url == f"http://localhost:{stack.settings.web_port}"
    finally:
        stack.stop()


def test_dev_binds_loopback_unless_told_otherwise():
    stack = DevStack({**EXTERNAL, "WEB_PORT": str(free_port())})
    stack.plan()
    stack.stop()
    assert (stack.settings.web_host, stack.settings.ops_host) == ("127.0.0.1", "127.0.0.1")
    chosen = DevStack({**EXTERNAL, "WEB_PORT": str(free_port()), "WEB_HOST": "0.0.0.0"})
    chosen.plan()
    chosen.stop()
    assert chosen.settings.web_host == "0.0.0.0"


def test_stop_removes_the_temporary_worker_directory_but_never_a_given_one(tmp_path):
    stack = DevStack({**EXTERNAL, "WEB_PORT": str(free_port())})
    stack.plan()
    made = Path(stack.settings.worker_data_dir)
    assert made.is_dir() and made.name.startswith("topcoins-worker-")
    stack.stop()
    assert not made.exists()
    given = DevStack({**EXTERNAL, "WEB_PORT": str(free_port()), "WORKER_DATA_DIR": str(tmp_path)})
    given.plan()
    given.stop()
    assert tmp_path.is_dir()
