"""``topcoins dev``: the whole service on one machine (broker, emulator, producers, worker, web).

An explicitly set ``KAFKA_BOOTSTRAP_SERVERS`` replaces the embedded broker, and
``CMC_BASE_URL`` / ``CRYPTOCOMPARE_BASE_URL`` replace the emulator for that provider.
"""

from __future__ import annotations

import logging
import secrets
import signal
import socket
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from topcoins.brokers import BrokerError, LocalBroker, free_port, make_broker
from topcoins.settings import Settings
from topcoins.supervisor import Component, Supervisor, child_env, wait_http_ok

__all__ = ["DevStack", "run_dev"]

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


def _port_or_free(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


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

    def _set_default(self, name: str, value: str) -> None:
        if not self.env.get(name):
            self.overrides[name] = value

    def plan(self) -> list[Component]:
        """Decide every component's environment; starts the embedded broker if needed."""
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
        self._set_default("WORKER_DATA_DIR", tempfile.mkdtemp(prefix="topcoins-worker-"))
        settings = Settings.from_env({**self.env, **self.overrides})
        ops = "http://127.0.0.1:{}/healthz"
        components += [
            Component("pricing", "pricing", {}, ops.format(settings.pricing_ops_port)),
            Component("ranking", "ranking", {}, ops.format(settings.ranking_ops_port)),
            Component("worker", "worker", {}, ops.format(settings.worker_ops_port)),
            Component("web", "web", {}, f"http://127.0.0.1:{settings.web_port}/healthz"),
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
        return wait_http_ok(f"http://127.0.0.1:{self.settings.web_port}/readyz", timeout)

    def stop(self) -> None:
        """Stop every component, then the embedded broker; safe to call twice."""
        self.supervisor.stop_all()
        if self.broker is not None:
            self.broker.cleanup()
            self.broker = None


def run_dev(env: Mapping[str, str], broker_kind: str = "tansu") -> int:
    """Run the whole service until Ctrl-C or SIGTERM; return the exit code."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stack = DevStack(env, broker_kind)
    try:
        stack.start()
        if stack.broker is not None:
            logger.info(
                "embedded broker running",
                extra={"broker": broker_kind, "bootstrap": stack.broker.bootstrap_servers},
            )
        ready = False
        while not stop.is_set():
            if not ready and wait_http_ok(f"{stack.web_url}/readyz", 1.0):
                ready = True
                print(f"topcoins is serving at {stack.web_url}/?limit=200", flush=True)
            exited = stack.supervisor.exited()
            if exited:
                logger.error("a component exited; stopping everything", extra={"exited": exited})
                return 1
            stop.wait(0.5)
        return 0
    except (BrokerError, RuntimeError) as exc:
        logger.error("topcoins dev could not start: %s", exc)
        return 1
    finally:
        stack.stop()
