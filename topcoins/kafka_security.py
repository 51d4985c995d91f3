"""How every topcoins Kafka client authenticates: one place from settings to client options.

``kafka_client_options(settings)`` gives the keyword arguments shared by every aiokafka
consumer, producer and admin client (``bootstrap_servers`` excluded);
``faust_credentials(settings)`` gives the Faust worker the same thing as
``broker_credentials``. A CA, certificate or key that cannot be loaded raises
``KafkaAccessError`` naming the setting to fix. The SASL password is never in a repr or
a message.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiokafka.helpers import create_ssl_context

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

    from topcoins.settings import Settings

__all__ = [
    "MECHANISMS",
    "PROTOCOLS",
    "KafkaAccessError",
    "KafkaSecurity",
    "faust_credentials",
    "kafka_client_options",
]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class KafkaAccessError(RuntimeError):
    """Kafka refused our credentials or certificate, or they cannot be loaded.

    ``setting`` names the environment variable to fix; the message is one line.
    """

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


@dataclass(frozen=True)
class KafkaSecurity:
    """The security part of the settings, validated as a whole."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_ca_file: str = ""
    ssl_cert_file: str = ""
    ssl_key_file: str = ""
    ssl_check_hostname: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaSecurity:
        """The security settings of ``settings``; raises ``KafkaAccessError`` when incomplete."""
        security = cls(
            protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=settings.kafka_sasl_password,
            ssl_ca_file=settings.kafka_ssl_ca_file,
            ssl_cert_file=settings.kafka_ssl_cert_file,
            ssl_key_file=settings.kafka_ssl_key_file,
            ssl_check_hostname=settings.kafka_ssl_check_hostname,
        )
        security.validate()
        return security

    @property
    def uses_sasl(self) -> bool:
        """True for ``SASL_PLAINTEXT`` and ``SASL_SSL``."""
        return self.protocol.startswith("SASL_")

    @property
    def uses_ssl(self) -> bool:
        """True for ``SSL`` and ``SASL_SSL``."""
        return self.protocol in ("SSL", "SASL_SSL")

    def validate(self) -> None:
        """Raise ``KafkaAccessError`` when a setting the protocol needs is missing."""
        if self.uses_sasl:
            for setting, value in (
                ("KAFKA_SASL_USERNAME", self.sasl_username),
                ("KAFKA_SASL_PASSWORD", self.sasl_password),
            ):
                if not value:
                    raise KafkaAccessError(
                        setting, f"is empty, and KAFKA_SECURITY_PROTOCOL={self.protocol} needs it"
                    )
        if bool(self.ssl_cert_file) != bool(self.ssl_key_file):
            missing = "KAFKA_SSL_KEY_FILE" if self.ssl_cert_file else "KAFKA_SSL_CERT_FILE"
            raise KafkaAccessError(
                missing, "is empty: a client certificate needs both its file and its key"
            )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``SSL`` and ``SASL_SSL`` (loaded once), else None."""
        if not self.uses_ssl:
            return None
        return _ssl_context(
            self.ssl_ca_file, self.ssl_cert_file, self.ssl_key_file, self.ssl_check_hostname
        )

    def client_options(self) -> dict[str, Any]:
        """aiokafka keyword arguments: ``security_protocol``, SASL and ``ssl_context``."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_ssl:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            options.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        return options

    def faust_credentials(self) -> CredentialsT | None:
        """Faust's ``broker_credentials`` for this protocol; None for ``PLAINTEXT``."""
        import faust

        if self.uses_sasl:
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                ssl_context=self.ssl_context(),
                mechanism=self.sasl_mechanism,
            )
        if self.uses_ssl:
            return faust.SSLCredentials(self.ssl_context())
        return None


@functools.lru_cache(maxsize=8)
def _ssl_context(
    ca_file: str, cert_file: str, key_file: str, check_hostname: bool
) -> ssl.SSLContext:
    try:
        context = create_ssl_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise KafkaAccessError(
            "KAFKA_SSL_CA_FILE", f"cannot load the CA file {ca_file!r}: {_reason(exc)}"
        ) from exc
    if cert_file:
        try:
            context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as exc:
            raise KafkaAccessError(
                "KAFKA_SSL_CERT_FILE",
                f"cannot load the client certificate {cert_file!r} with its key "
                f"KAFKA_SSL_KEY_FILE={key_file!r}: {_reason(exc)}",
            ) from exc
    context.check_hostname = check_hostname
    return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """The security keyword arguments every aiokafka client of ``settings`` takes."""
    return KafkaSecurity.from_settings(settings).client_options()


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """The Faust ``broker_credentials`` of ``settings`` (None for ``PLAINTEXT``)."""
    return KafkaSecurity.from_settings(settings).faust_credentials()
