"""``topcoins dev``: the whole service on one machine (broker, emulator, producers, worker, web).

An explicitly set ``KAFKA_BOOTSTRAP_SERVERS`` replaces the embedded broker, and
``CMC_BASE_URL`` / ``CRYPTOCOMPARE_BASE_URL`` replace the emulator for that provider.
Everything binds loopback unless ``WEB_HOST`` / ``OPS_HOST`` say otherwise, logs are short
text lines unless ``LOG_FORMAT`` says otherwise, and a busy ``WEB_PORT`` is refused before
anything starts (an unset one moves to a free port). On Ctrl-C the Kafka clients stop
first (all at once), then the emulator, and the embedded broker last: every child runs in
its own session, so a terminal's SIGINT reaches only ``topcoins dev``, which stops them in
that order.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from topcoins.brokers import BrokerError, LocalBroker, free_port, make_broker
from topcoins.dev_summary import OPTIONAL_PAGES, DevFacts, summary_lines
from topcoins.settings import Settings
from topcoins.supervisor import Component, Supervisor, child_env, wait_http_ok

__all__ = ["DevStack", "PortInUseError", "run_dev"]

logger = logging.getLogger(__name__)

EMULATOR_PORT = 6668
# Development polls often so that the emulator's drift shows quickly; set them to override.
DEV_POLL_SECONDS = "5"
# The emulator charges nothing: plan limits far above what fast polls need, so that the
# producers do not stretch their intervals to fit a real plan's budget.
EMULATOR_PLAN = {
    "CMC_MONTHLY_CREDITS": "1000000000",
    "CMC_CALLS_PER_MINUTE": "1000",
    "CRYPTOCOMPARE_CALLS_PER_MINUTE": "10000",
    "CRYPTOCOMPARE_CALLS_PER_HOUR": "1000000",
    "CRYPTOCOMPARE_CALLS_PER_DAY": "10000000",
}
READY_TIMEOUT_SECONDS = 120.0
LOOPBACK = "127.0.0.1"


class PortInUseError(RuntimeError):
    """A port ``topcoins dev`` was told to use is taken by another process."""


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _port_or_free(preferred: int) -> int:
    return preferred if _port_free(LOOPBACK, preferred) else free_port()


class DevStack:
    """The set of processes ``topcoins dev`` runs; the end-to-end tests drive it too."""

    def __init__(
        self,
        env: Mapping[str, str],
        broker_kind: str = "tansu",
        log_dir: Path | None = None,
        emulator_port: int | None = None,
    ) -> None:
        self.env = dict(env)
        self.broker_kind = broker_kind
        self.broker: LocalBroker | None = None
        self.overrides: dict[str, str] = {}
        self.emulator_url: str | None = None
        self.emulator_port = emulator_port
        self.supervisor = Supervisor(child_env({}), log_dir)
        self.worker_dir: str | None = None  # a temporary WORKER_DATA_DIR, removed by stop()
        self.emulated: list[str] = []  # the providers the emulator stands in for

    def _set_default(self, name: str, value: str) -> None:
        if not self.env.get(name):
            self.overrides[name] = value

    def _choose_web_port(self) -> None:
        """Keep a free WEB_PORT; refuse a busy one that was set, move an unset one."""
        settings = Settings.from_env({**self.env, **self.overrides})
        if _port_free(settings.web_host, settings.web_port):
            return
        if self.env.get("WEB_PORT"):
            raise PortInUseError(
                f"WEB_PORT {settings.web_port} is already in use on {settings.web_host} "
                "(another topcoins dev?): stop that process or set WEB_PORT to a free port"
            )
        port = free_port()
        logger.warning(
            f"port {settings.web_port} is busy; the web service uses {port} instead",
            extra={"busy_port": settings.web_port, "web_port": port},
        )
        self.overrides["WEB_PORT"] = str(port)

    def plan(self) -> list[Component]:
        """Decide every component's environment; starts the embedded broker if needed."""
        self._set_default("WEB_HOST", LOOPBACK)
        self._set_default("OPS_HOST", LOOPBACK)
        # A short group session: Tansu lets the worker join in ~3 s only with one, and a
        # restarted worker takes over at once. Real clusters keep the 45 s / 3 s defaults.
        self._set_default("WORKER_SESSION_TIMEOUT_SECONDS", "6")
        self._set_default("WORKER_HEARTBEAT_SECONDS", "1")
        self._choose_web_port()
        if not self.env.get("KAFKA_BOOTSTRAP_SERVERS"):
            self.broker = make_broker(self.broker_kind)
            self.broker.start()
            self.overrides["KAFKA_BOOTSTRAP_SERVERS"] = self.broker.bootstrap_servers
        components: list[Component] = []
        needs_cmc = not self.env.get("CMC_BASE_URL")
        needs_cc = not self.env.get("CRYPTOCOMPARE_BASE_URL")
        if needs_cmc or needs_cc:
            port = self.emulator_port or _port_or_free(EMULATOR_PORT)
            self.emulator_url = f"http://127.0.0.1:{port}"
            cmc_key, cc_key = f"dev-cmc-{secrets.token_hex(8)}", f"dev-cc-{secrets.token_hex(8)}"
            emulator_env = {
                "EMULATOR_HOST": "127.0.0.1",
                "EMULATOR_PORT": str(port),
                "EMULATOR_CMC_API_KEY": cmc_key,
                "EMULATOR_CRYPTOCOMPARE_API_KEY": cc_key,
            }
            components.append(
                Component("emulator", "emulator", emulator_env, f"{self.emulator_url}/healthz")
            )
            self.emulated = [
                name
                for name, emulated in (("coinmarketcap", needs_cmc), ("cryptocompare", needs_cc))
                if emulated
            ]
            if needs_cmc:
                self.overrides.update(CMC_BASE_URL=self.emulator_url, CMC_API_KEY=cmc_key)
            if needs_cc:
                self.overrides.update(
                    CRYPTOCOMPARE_BASE_URL=self.emulator_url, CRYPTOCOMPARE_API_KEY=cc_key
                )
            self._set_default("PRICING_POLL_SECONDS", DEV_POLL_SECONDS)
            self._set_default("RANKING_POLL_SECONDS", DEV_POLL_SECONDS)
            for name, value in EMULATOR_PLAN.items():
                emulated = needs_cmc if name.startswith("CMC_") else needs_cc
                if emulated:  # never lift the limits of a real provider's plan
                    self._set_default(name, value)
        for name in ("PRICING_OPS_PORT", "RANKING_OPS_PORT", "WORKER_OPS_PORT"):
            self._set_default(name, str(free_port()))
        if not self.env.get("WORKER_DATA_DIR"):
            self.worker_dir = tempfile.mkdtemp(prefix="topcoins-worker-")
            self.overrides["WORKER_DATA_DIR"] = self.worker_dir
        settings = Settings.from_env({**self.env, **self.overrides})
        ops = "http://127.0.0.1:{}/healthz"
        components += [
            Component("pricing", "pricing", {}, ops.format(settings.pricing_ops_port)),
            Component("ranking", "ranking", {}, ops.format(settings.ranking_ops_port)),
            Component("worker", "worker", {}, ops.format(settings.worker_ops_port)),
            Component("web", "web", {}, f"http://{LOOPBACK}:{settings.web_port}/healthz"),
        ]
        self.settings = settings
        return components

    @property
    def web_url(self) -> str:
        """Base URL of the web service."""
        return f"http://localhost:{self.settings.web_port}"

    def start(self) -> None:
        """Start the broker (if embedded) and every component."""
        components = self.plan()
        self.supervisor.base_env.update(self.env)
        self.supervisor.base_env.update(self.overrides)
        for component in components:
            self.supervisor.start(component)
            is_emulator = component.name == "emulator" and component.health_url
            if is_emulator and not wait_http_ok(str(component.health_url), 30):
                raise RuntimeError("the upstream emulator did not start within 30 s")

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> bool:
        """Wait until the web service has data to serve."""
        return wait_http_ok(f"{self.local_web_url}/readyz", timeout)

    def stop(self) -> None:
        """Stop the Kafka clients (all at once), then the emulator, then the embedded
        broker, then remove the temporary worker directory; safe to call twice."""
        clients = [name for name in self.supervisor.processes if name != "emulator"]
        self.supervisor.stop_together(clients)
        self.supervisor.stop_all()
        if self.broker is not None:
            self.broker.cleanup()
            self.broker = None
        if self.worker_dir is not None:
            shutil.rmtree(self.worker_dir, ignore_errors=True)
            self.worker_dir = None

    def facts(self) -> DevFacts:
        """What the start-up summary says, read from the running stack (``/status``)."""
        status = _get_json(f"{self.local_web_url}/status") or {}
        sources = status.get("sources") if isinstance(status, dict) else None
        return DevFacts(
            web_url=self.web_url,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            broker=self.broker_kind if self.broker is not None else None,
            emulator_url=self.emulator_url,
            sources=sources if isinstance(sources, dict) else {},
            pages=[page for page in OPTIONAL_PAGES if _answers(f"{self.local_web_url}{page}")],
            emulated_provider=self.emulated[0] if self.emulated else "coinmarketcap",
        )

    @property
    def local_web_url(self) -> str:
        """The web service's base URL on the address it binds (loopback by default)."""
        host = self.settings.web_host
        return f"http://{LOOPBACK if host in ('0.0.0.0', '::') else host}:{self.settings.web_port}"


def _get_json(url: str) -> object:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError):
        return False


def run_dev(env: Mapping[str, str], broker_kind: str = "tansu") -> int:
    """Run the whole service until Ctrl-C or SIGTERM; return the exit code.

    Once the web service answers, prints ``summary_lines`` on stdout. A start-up failure
    (a busy port, a broker that does not start) is one line on stderr and exit status 1.
    """
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stack = DevStack({"LOG_FORMAT": "text", **{k: v for k, v in env.items() if v}}, broker_kind)
    try:
        stack.start()
        ready = False
        while not stop.is_set():
            exited = stack.supervisor.exited()
            if exited:
                logger.error("a component exited; stopping everything", extra={"exited": exited})
                return 1
            if not ready and wait_http_ok(f"{stack.local_web_url}/readyz", 1.0):
                ready = True
                print("\n".join(summary_lines(stack.facts())), flush=True)
            stop.wait(0.5)
        return 0
    except (BrokerError, RuntimeError) as exc:
        print(f"topcoins dev could not start: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        stack.stop()
