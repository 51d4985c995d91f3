"""Every component on a secured Apache Kafka: SASL_SSL (SCRAM-SHA-512) and mutual TLS.

One broker for the module (``ApacheKafkaBroker(secure=True)``: a test CA, a PEM key store,
SCRAM credentials added when the storage is formatted). Refused credentials or
certificates stop every component within 30 s with status 2 and the setting to fix, and
no output ever holds the password.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tests.conftest import KINDS
from tests.e2e.conftest import E2E_ENV, _clean_env
from topcoins.brokers import ApacheKafkaBroker, BrokerError, free_port
from topcoins.cli import _print_secure_settings
from topcoins.dev import DevStack
from topcoins.kafka_access import check_access, probe_access
from topcoins.kafka_security import KafkaAccessError, kafka_client_options
from topcoins.local_pki import LocalPki
from topcoins.settings import Settings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif("apache-kafka" not in KINDS, reason="needs apache-kafka in the brokers"),
]

EXAMPLE_CONSUMER = Path(__file__).resolve().parents[2] / "scripts" / "example_consumer.py"
REFUSAL_DEADLINE_SECONDS = 30.0


@pytest.fixture(scope="module")
def secure_kafka() -> Iterator[ApacheKafkaBroker]:
    broker = ApacheKafkaBroker(secure=True)
    try:
        broker.start()
    except BrokerError as exc:
        pytest.fail(f"could not start the secured Apache Kafka: {exc}")
    try:
        yield broker
    finally:
        broker.cleanup()


def _env(settings: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        **_clean_env(),
        **E2E_ENV,
        **settings,
        "TOPIC_PREFIX": f"sec-{uuid.uuid4().hex[:10]}",
        "WEB_PORT": str(free_port()),
        **extra,
    }


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SSL"])
def test_every_component_works_on_the_secured_listener(secure_kafka, tmp_path, protocol):
    env = _env(secure_kafka.client_settings(protocol))
    stack = DevStack(env, log_dir=tmp_path / "logs", emulator_port=free_port())
    try:
        stack.start()
        assert stack.wait_ready(120), "the web service did not become ready within 120 s"
        served = httpx.get(f"{stack.web_url}/?limit=10", timeout=10).json()["data"]
        assert [row["rank"] for row in served] == list(range(1, 11))

        replay = _run(["-m", "topcoins", "replay", "--limit", "3", "--format", "json"], env)
        assert replay.returncode == 0, replay.stderr
        assert "rows" in replay.stderr

        consumer = _run([str(EXAMPLE_CONSUMER), "--prefix", env["TOPIC_PREFIX"]], env)
        assert consumer.returncode == 0, consumer.stderr
        assert len(consumer.stdout.strip().splitlines()) == 11
    finally:
        stack.stop()
    logs = "".join(path.read_text(errors="replace") for path in (tmp_path / "logs").glob("*"))
    assert "idempotent producer on" in logs  # Apache Kafka grants producer ids
    assert secure_kafka.scram_password not in logs + replay.stderr + consumer.stderr


COMPONENTS = {
    "pricing": ["-m", "topcoins", "pricing"],
    "ranking": ["-m", "topcoins", "ranking"],
    "worker": ["-m", "topcoins", "worker"],
    "web": ["-m", "topcoins", "web"],
    "replay": ["-m", "topcoins", "replay"],
    "example_consumer": [str(EXAMPLE_CONSUMER)],
}


def _wrong_password(broker: ApacheKafkaBroker, tmp_path: Path) -> dict[str, str]:
    return {**broker.client_settings("SASL_SSL"), "KAFKA_SASL_PASSWORD": "wrong-Pa55word"}


def _unknown_user(broker: ApacheKafkaBroker) -> dict[str, str]:
    return {**broker.client_settings("SASL_SSL"), "KAFKA_SASL_USERNAME": "mallory"}


def _untrusted_ca(broker: ApacheKafkaBroker, tmp_path: Path) -> dict[str, str]:
    other = LocalPki(tmp_path / "other-ca")
    return {**broker.client_settings("SSL"), "KAFKA_SSL_CA_FILE": str(other.ca.cert)}


@pytest.mark.parametrize(
    ("make_settings", "setting"),
    [
        (_wrong_password, "KAFKA_SASL_PASSWORD"),
        (_untrusted_ca, "KAFKA_SSL_CA_FILE"),
    ],
    ids=["wrong-password", "untrusted-ca"],
)
def test_refused_access_stops_every_component_with_the_setting(
    secure_kafka, tmp_path, make_settings, setting
):
    settings = make_settings(secure_kafka, tmp_path)
    ports = {name: str(free_port()) for name in ("PRICING_OPS_PORT", "RANKING_OPS_PORT")}
    env = _env(
        settings,
        **ports,
        WORKER_OPS_PORT=str(free_port()),
        WORKER_DATA_DIR=str(tmp_path / "worker"),
        CMC_BASE_URL="http://127.0.0.1:1",
        CRYPTOCOMPARE_BASE_URL="http://127.0.0.1:1",
    )
    started = time.monotonic()
    processes = {
        name: subprocess.Popen(
            [sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for name, args in COMPONENTS.items()
    }
    outputs = {}
    try:
        for name, process in processes.items():
            remaining = max(0.1, REFUSAL_DEADLINE_SECONDS - (time.monotonic() - started))
            out, err = process.communicate(timeout=remaining)
            outputs[name] = (process.returncode, out.decode() + err.decode())
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    for name, (status, output) in outputs.items():
        assert status == 2, f"{name} exited {status}: {output[-2000:]}"
        reasons = [line for line in output.splitlines() if f"{setting}:" in line]
        assert reasons, f"{name} did not name {setting}: {output[-2000:]}"
        assert secure_kafka.scram_password not in output
        assert "wrong-Pa55word" not in output


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
async def test_both_sasl_mechanisms_authenticate(secure_kafka, mechanism):
    good = Settings.from_env(
        {**secure_kafka.client_settings("SASL_SSL"), "KAFKA_SASL_MECHANISM": mechanism}
    )
    assert await probe_access(good.kafka_servers, kafka_client_options(good)) is not None
    with pytest.raises(KafkaAccessError, match=f"^KAFKA_SASL_PASSWORD: .* with {mechanism}"):
        await check_access(replace(good, kafka_sasl_password="wrong-Pa55word"))


def _without_client_certificate(broker: ApacheKafkaBroker) -> dict[str, str]:
    settings = broker.client_settings("SSL")
    return {
        k: v for k, v in settings.items() if k not in ("KAFKA_SSL_CERT_FILE", "KAFKA_SSL_KEY_FILE")
    }


def _other_mechanism(broker: ApacheKafkaBroker) -> dict[str, str]:
    return {**broker.client_settings("SASL_SSL"), "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"}


def _plaintext_to_tls(broker: ApacheKafkaBroker) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": broker.client_settings("SSL")["KAFKA_BOOTSTRAP_SERVERS"]}


@pytest.mark.parametrize(
    ("make_settings", "setting"),
    [
        (_unknown_user, "KAFKA_SASL_PASSWORD"),
        (_without_client_certificate, "KAFKA_SSL_CERT_FILE"),
        (_other_mechanism, "KAFKA_SASL_MECHANISM"),
        (_plaintext_to_tls, "KAFKA_SECURITY_PROTOCOL"),
    ],
    ids=["unknown-user", "no-client-certificate", "mechanism-not-enabled", "plaintext-to-tls"],
)
async def test_other_refusals_name_their_setting(secure_kafka, make_settings, setting):
    with pytest.raises(KafkaAccessError, match=f"^{setting}: "):
        await check_access(Settings.from_env(make_settings(secure_kafka)))


def test_the_broker_command_prints_working_client_settings(secure_kafka, capsys):
    _print_secure_settings(secure_kafka)
    printed = capsys.readouterr().out
    for protocol in ("SASL_SSL", "SSL"):
        for name, value in secure_kafka.client_settings(protocol).items():
            assert f"{name}={value}\n" in printed
