import faust
import pytest
from faust.types.auth import AuthProtocol

from topcoins.kafka_security import KafkaAccessError, kafka_client_options
from topcoins.settings import Settings
from topcoins.streams.credentials import faust_credentials

PASSWORD = "pw-0f3c9a7e"


def settings(**env: str) -> Settings:
    return Settings.from_env(env)


def test_plaintext_has_no_credentials():
    assert faust_credentials(settings()) is None


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [("SASL_SSL", AuthProtocol.SASL_SSL), ("SASL_PLAINTEXT", AuthProtocol.SASL_PLAINTEXT)],
)
def test_sasl_gives_faust_what_aiokafka_gets(protocol, expected):
    configured = settings(
        KAFKA_SECURITY_PROTOCOL=protocol,
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="alice",
        KAFKA_SASL_PASSWORD=PASSWORD,
    )
    credentials = faust_credentials(configured)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol is expected
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert (credentials.username, credentials.password) == ("alice", PASSWORD)
    # the TLS context is loaded once per process and shared with the aiokafka clients
    assert credentials.ssl_context is kafka_client_options(configured).get("ssl_context")


def test_ssl_gives_faust_the_shared_tls_context():
    configured = settings(KAFKA_SECURITY_PROTOCOL="SSL")
    credentials = faust_credentials(configured)
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.protocol is AuthProtocol.SSL
    assert credentials.context is kafka_client_options(configured)["ssl_context"]


def test_incomplete_credentials_stop_the_worker_as_they_stop_the_other_clients():
    with pytest.raises(KafkaAccessError, match=r"^KAFKA_SASL_PASSWORD: is empty"):
        faust_credentials(settings(KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_USERNAME="a"))
