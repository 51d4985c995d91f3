"""A headless Chromium driven over the Chrome DevTools Protocol, for the page tests.

``Browser.start()`` launches the Debian ``chromium`` with a fresh profile and a DevTools port
of its own, then talks to its one page over a websocket (the ``websockets`` package): call
a method, evaluate JavaScript, take a screenshot. Every console error, uncaught exception
and failed load the page reports is kept in ``problems``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
]
_LISTENING = re.compile(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/")


def chromium_path() -> str | None:
    """The Chromium binary (``CHROMIUM`` overrides), or None when it is not installed."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium")


class BrowserError(RuntimeError):
    """Chromium did not start, or a DevTools call failed."""


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, binary: str, start_timeout: float = 30.0) -> None:
        self.binary = binary
        self.start_timeout = start_timeout
        self.problems: list[str] = []
        self._profile = Path(tempfile.mkdtemp(prefix="topcoins-chromium-"))
        self._log = self._profile.with_suffix(".log")
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: ClientConnection | None = None
        self._closing = contextlib.ExitStack()
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Browser:
        try:
            self._launch()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _launch(self) -> None:
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,  # its renderers and helpers share our process group
            )
        deadline = time.monotonic() + self.start_timeout
        port = None
        while port is None:
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = self._log.read_text(errors="replace")[-800:]
                raise BrowserError(f"chromium did not open its DevTools port: {tail}")
            found = _LISTENING.search(self._log.read_text(errors="replace"))
            port = int(found.group(1)) if found else None
            time.sleep(0.1)
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(target for target in targets if target["type"] == "page")
        self._socket = self._closing.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        )
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30) -> Any:
        """Send one DevTools command and return its ``result``; events are kept meanwhile."""
        if self._socket is None:
            raise BrowserError("the browser is not running")
        ident = next(self._ids)
        self._socket.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"{method}: no answer within {timeout} s")
            message = json.loads(self._socket.recv(timeout=remaining))
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._note(message)

    def _note(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.problems.append(f"uncaught exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            self.problems.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.problems.append(f"{entry['source']}: {entry['text']} {entry.get('url', '')}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self.problems.append(f"load failed: {params.get('errorText')}")

    def navigate(self, url: str, timeout: float = 30) -> None:
        """Open ``url`` and wait for its load event."""
        self._events.clear()
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while not any(e["method"] == "Page.loadEventFired" for e in self._events):
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not load within {timeout} s")
            self.evaluate("0")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def viewport(self, width: int, height: int, *, mobile: bool = False) -> None:
        """Resize the page's viewport (``mobile``: a phone's scale and touch)."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the whole page (beyond the viewport) to ``path``."""
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def close(self) -> None:
        """Close the socket, stop Chromium's process group and remove the profile."""
        with contextlib.suppress(Exception):
            self._closing.close()
        self._socket = None
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(10)
            self._process = None
        shutil.rmtree(self._profile, ignore_errors=True)
        self._log.unlink(missing_ok=True)
