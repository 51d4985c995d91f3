"""The access probe against small local TLS servers (the broker: tests/e2e/test_secure_kafka.py)."""

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator

import pytest

from topcoins.brokers import free_port
from topcoins.kafka_access import probe_access, use_idempotence, watch_access
from topcoins.kafka_security import KafkaAccessError, kafka_client_options
from topcoins.local_pki import CertFiles, LocalPki
from topcoins.settings import Settings


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalPki, LocalPki, CertFiles]:
    """Our CA, another CA, and a server certificate of ours for another host name."""
    ours = LocalPki(tmp_path_factory.mktemp("ours"))
    ours.issue("localhost", hosts=("localhost", "127.0.0.1"))
    other_host = ours.issue("elsewhere", hosts=("elsewhere.example",))
    return ours, LocalPki(tmp_path_factory.mktemp("theirs")), other_host


@contextlib.asynccontextmanager
async def _tls_server(cert: CertFiles) -> AsyncIterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert.cert, cert.key)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers a Kafka request
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0, ssl=context)
    async with server:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"


def _options(ca: LocalPki, *, check_hostname: bool = True) -> dict:
    return kafka_client_options(
        Settings(
            kafka_security_protocol="SSL",
            kafka_ssl_ca_file=str(ca.ca.cert),
            kafka_ssl_check_hostname=check_hostname,
        )
    )


async def test_an_untrusted_broker_certificate_names_the_ca_setting(pkis):
    ours, theirs, _ = pkis
    server_cert = CertFiles(ours.folder / "localhost.pem", ours.folder / "localhost.key")
    async with _tls_server(server_cert) as server:
        with pytest.raises(
            KafkaAccessError, match=r"^KAFKA_SSL_CA_FILE: .* is not trusted"
        ) as raised:
            await probe_access([server], _options(theirs), timeout=1.0)
        assert raised.value.setting == "KAFKA_SSL_CA_FILE"


async def test_a_certificate_for_another_host_names_the_hostname_check(pkis):
    ours, _, other_host = pkis
    async with _tls_server(other_host) as server:
        with pytest.raises(KafkaAccessError, match=r"^KAFKA_SSL_CHECK_HOSTNAME: .* does not name"):
            await probe_access([server], _options(ours), timeout=1.0)
        # without the check the handshake passes; the server never answers: not reachable
        assert (
            await probe_access([server], _options(ours, check_hostname=False), timeout=0.5) is None
        )


async def test_an_unreachable_broker_is_no_refusal():
    assert await probe_access([f"127.0.0.1:{free_port()}"], {}, timeout=0.5) is None


async def test_watching_an_unreachable_broker_keeps_waiting():
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(watch_access(settings, retry_seconds=0.05), timeout=0.3)


@pytest.mark.e2e
async def test_auto_idempotence_is_on_for_apache_kafka_and_off_for_tansu(bootstrap_servers, broker):
    settings = Settings(kafka_bootstrap_servers=bootstrap_servers)
    assert await use_idempotence(settings) is (broker.kind != "tansu")
    forced = Settings(kafka_bootstrap_servers=bootstrap_servers, kafka_idempotence="false")
    assert await use_idempotence(forced) is False
