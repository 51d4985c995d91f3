"""How every topcoins Kafka client authenticates: one place from settings to client options.

``kafka_client_options(settings)`` gives the keyword arguments shared by every aiokafka
consumer, producer and admin client (``bootstrap_servers`` excluded); the Faust worker
turns them into its ``broker_credentials`` (``topcoins.streams.credentials``). A CA,
certificate or key that cannot be loaded raises ``KafkaAccessError`` naming the setting
to fix. The SASL password is never in a repr or a message.
"""

from __future__ import annotations

import functools
import ssl
from typing import TYPE_CHECKING, Any

from aiokafka.helpers import create_ssl_context

if TYPE_CHECKING:
    from topcoins.settings import Settings

__all__ = ["KafkaAccessError", "kafka_client_options", "ssl_context"]


class KafkaAccessError(RuntimeError):
    """Kafka refused our credentials or certificate, or they cannot be loaded.

    ``setting`` names the environment variable to fix; the message is one line.
    """

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


def _uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol.startswith("SASL_")


def _uses_ssl(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def _check(settings: Settings) -> None:
    """Raise ``KafkaAccessError`` when a setting the protocol needs is missing."""
    if _uses_sasl(settings):
        for setting, value in (
            ("KAFKA_SASL_USERNAME", settings.kafka_sasl_username),
            ("KAFKA_SASL_PASSWORD", settings.kafka_sasl_password),
        ):
            if not value:
                raise KafkaAccessError(
                    setting,
                    f"is empty, and KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} "
                    "needs it",
                )
    if bool(settings.kafka_ssl_cert_file) != bool(settings.kafka_ssl_key_file):
        missing = "KAFKA_SSL_KEY_FILE" if settings.kafka_ssl_cert_file else "KAFKA_SSL_CERT_FILE"
        raise KafkaAccessError(
            missing, "is empty: a client certificate needs both its file and its key"
        )


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for ``SSL`` and ``SASL_SSL`` (loaded once), else None; raises
    ``KafkaAccessError`` when a setting the protocol needs is missing or cannot be loaded."""
    _check(settings)
    if not _uses_ssl(settings):
        return None
    return _ssl_context(
        settings.kafka_ssl_ca_file,
        settings.kafka_ssl_cert_file,
        settings.kafka_ssl_key_file,
        settings.kafka_ssl_check_hostname,
    )


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """The security keyword arguments every aiokafka client of ``settings`` takes:
    ``security_protocol``, SASL and ``ssl_context``."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if _uses_sasl(settings):
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password,
        )
    return options


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
