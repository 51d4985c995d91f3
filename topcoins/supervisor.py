"""Runs topcoins components as child processes and stops them cleanly (no orphans).

Used by ``topcoins dev`` and by the end-to-end tests, which also kill and restart
single components.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from topcoins.brokers import _die_with_parent

__all__ = ["Component", "Supervisor", "wait_http_ok"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Component:
    """One child process: a ``topcoins`` subcommand with its environment."""

    name: str
    subcommand: str
    env: Mapping[str, str] = field(default_factory=dict)
    health_url: str | None = None

    def argv(self) -> list[str]:
        """The command line that runs this component."""
        return [sys.executable, "-m", "topcoins", self.subcommand]


class Supervisor:
    """Starts components, watches them, and stops all of them (SIGTERM, then SIGKILL)."""

    def __init__(self, base_env: Mapping[str, str], log_dir: Path | None = None) -> None:
        self.base_env = dict(base_env)
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.components: dict[str, Component] = {}
        self._logs: dict[str, IO[bytes]] = {}

    def start(self, component: Component) -> subprocess.Popen[bytes]:
        """Start one component; its output goes to the log dir (or this process' stderr)."""
        env = {**self.base_env, **component.env}
        stdout: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            stdout = (self.log_dir / f"{component.name}.log").open("ab")
            self._logs[component.name] = stdout
        process = subprocess.Popen(
            component.argv(),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT if stdout else None,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            # Its own session: a terminal's Ctrl-C reaches only the parent, which then stops
            # the components in order (and Linux still stops them if the parent dies).
            start_new_session=True,
        )
        self.processes[component.name] = process
        self.components[component.name] = component
        return process

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Stop (if running) and start a component again with the same settings."""
        self.stop(name)
        return self.start(self.components[name])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to a component and wait for it to exit."""
        process = self.processes[name]
        if process.poll() is None:
            process.send_signal(sig)
            process.wait(30)

    def stop(self, name: str, timeout: float = 20.0) -> int | None:
        """Stop one component with SIGTERM (SIGKILL after ``timeout``); return its exit code."""
        process = self.processes.get(name)
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
        self._reap(name, process, timeout)
        return process.returncode

    def stop_together(self, names: Sequence[str], timeout: float = 20.0) -> None:
        """SIGTERM all of ``names`` at once, then wait (SIGKILL whoever outlives ``timeout``)."""
        running = [self.processes[n] for n in names if n in self.processes]
        for process in running:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for name in names:
            process = self.processes.get(name)
            if process is not None:
                self._reap(name, process, max(0.0, deadline - time.monotonic()))

    def _reap(self, name: str, process: subprocess.Popen[bytes], timeout: float) -> None:
        """Wait up to ``timeout`` for ``process`` to exit (SIGKILL it then), close its log."""
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("component ignored SIGTERM; killing", extra={"component": name})
            process.kill()
            process.wait()
        log = self._logs.pop(name, None)
        if log is not None:
            log.close()

    def stop_all(self, timeout: float = 20.0) -> dict[str, int | None]:
        """Stop every component, newest first (the web before the worker before the broker)."""
        return {name: self.stop(name, timeout) for name in reversed(list(self.processes))}

    def exited(self) -> dict[str, int]:
        """Components that have exited on their own, with their exit codes."""
        return {
            name: code
            for name, process in self.processes.items()
            if (code := process.poll()) is not None
        }

    def pid(self, name: str) -> int:
        """Process id of a running component."""
        return self.processes[name].pid


def wait_http_ok(url: str, timeout: float) -> bool:
    """Poll ``url`` until it answers 2xx; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if 200 <= response.status < 300:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process' environment plus ``extra`` (PYTHONUNBUFFERED on, so logs stream)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
