import ssl
from pathlib import Path

import pytest

from topcoins.kafka_security import KafkaAccessError, kafka_client_options, ssl_context
from topcoins.local_pki import CertFiles, LocalPki
from topcoins.settings import Settings, SettingsError

PASSWORD = "pw-0f3c9a7e"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalPki, CertFiles]:
    pki = LocalPki(tmp_path_factory.mktemp("pki"))
    return pki, pki.issue("client")


def settings(**env: str) -> Settings:
    return Settings.from_env(env)


def test_plaintext_adds_nothing_but_the_protocol():
    assert kafka_client_options(settings()) == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_gives_the_mechanism_user_and_tls_context(pki):
    ca, _ = pki
    configured = settings(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="alice",
        KAFKA_SASL_PASSWORD=PASSWORD,
        KAFKA_SSL_CA_FILE=str(ca.ca.cert),
    )
    options = kafka_client_options(configured)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("alice", PASSWORD)
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert len(context.get_ca_certs()) == 1  # only the given CA, not the system's
    assert kafka_client_options(configured)["ssl_context"] is context  # loaded once per process


def test_mutual_tls_loads_the_client_certificate(pki):
    ca, client = pki
    configured = settings(
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CA_FILE=str(ca.ca.cert),
        KAFKA_SSL_CERT_FILE=str(client.cert),
        KAFKA_SSL_KEY_FILE=str(client.key),
        KAFKA_SSL_CHECK_HOSTNAME="false",
    )
    options = kafka_client_options(configured)
    assert set(options) == {"security_protocol", "ssl_context"}
    assert options["ssl_context"].check_hostname is False


def test_without_a_ca_file_the_broker_certificate_is_still_verified():
    context = ssl_context(settings(KAFKA_SECURITY_PROTOCOL="SSL"))  # against the system CAs
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"KAFKA_SASL_PASSWORD": PASSWORD}, "KAFKA_SASL_USERNAME"),
        ({"KAFKA_SASL_USERNAME": "alice"}, "KAFKA_SASL_PASSWORD"),
    ],
)
def test_sasl_without_its_credentials_names_the_missing_one(env, setting):
    with pytest.raises(KafkaAccessError, match=f"^{setting}: is empty") as raised:
        kafka_client_options(settings(KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT", **env))
    assert raised.value.setting == setting
    assert PASSWORD not in str(raised.value)


def test_an_unreadable_ca_file_names_the_setting(tmp_path: Path):
    missing = tmp_path / "nope.pem"
    with pytest.raises(KafkaAccessError, match=r"^KAFKA_SSL_CA_FILE: cannot load"):
        kafka_client_options(
            settings(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CA_FILE=str(missing))
        )
    not_pem = tmp_path / "garbage.pem"
    not_pem.write_text("not a certificate")
    with pytest.raises(KafkaAccessError, match=r"^KAFKA_SSL_CA_FILE: cannot load"):
        kafka_client_options(
            settings(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CA_FILE=str(not_pem))
        )


def test_a_certificate_without_its_key_is_refused(pki):
    _, client = pki
    with pytest.raises(KafkaAccessError, match=r"^KAFKA_SSL_KEY_FILE: is empty"):
        kafka_client_options(
            settings(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CERT_FILE=str(client.cert))
        )
    with pytest.raises(KafkaAccessError, match=r"^KAFKA_SSL_CERT_FILE: cannot load"):
        kafka_client_options(
            settings(
                KAFKA_SECURITY_PROTOCOL="SSL",
                KAFKA_SSL_CERT_FILE=str(client.cert),
                KAFKA_SSL_KEY_FILE=str(client.cert),  # a certificate is no key
            )
        )


def test_the_password_is_a_masked_secret():
    configured = settings(
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_USERNAME="alice",
        KAFKA_SASL_PASSWORD=PASSWORD,
    )
    assert PASSWORD in configured.secrets
    assert PASSWORD not in repr(configured)
    assert configured.public_dict()["kafka_sasl_password"] == "***"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KAFKA_SECURITY_PROTOCOL", "TLS"),
        ("KAFKA_SASL_MECHANISM", "GSSAPI"),
        ("KAFKA_SSL_CHECK_HOSTNAME", "maybe"),
        ("KAFKA_IDEMPOTENCE", "sometimes"),
    ],
)
def test_unknown_values_are_refused_with_the_variable(name, value):
    with pytest.raises(SettingsError, match=f"^{name}: must be"):
        settings(**{name: value})
