"""Start-up check that Kafka accepts our credentials and certificates, and what it supports.

aiokafka's clients hide why a bootstrap failed (a refused password and a closed port both
end as "Unable to bootstrap"), so each component opens one plain connection first with
``probe_access``: a refused password or user, an untrusted or mismatched certificate, or
an unsupported mechanism raises ``KafkaAccessError`` at once, naming the setting to fix;
an unreachable broker just returns None (the caller waits, as before). The same
connection asks for a producer id, which tells whether the idempotent producer works
(Apache Kafka: yes; Tansu, the embedded development broker: no).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import errors
from aiokafka.conn import create_conn
from aiokafka.protocol.transaction import InitProducerIdRequest

from topcoins.kafka_security import KafkaAccessError, kafka_client_options
from topcoins.settings import Settings

__all__ = ["BrokerAccess", "check_access", "probe_access", "use_idempotence", "watch_access"]

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class BrokerAccess:
    """The broker that accepted us, and whether it grants idempotent producer ids."""

    server: str
    idempotence: bool


# How long a failed probe waits for aiokafka's closed transport to go.
_CLOSE_GRACE_SECONDS = 0.1


async def probe_access(
    servers: Sequence[str], options: Mapping[str, Any], timeout: float = PROBE_TIMEOUT_SECONDS
) -> BrokerAccess | None:
    """Connect and authenticate to the first server that answers; None when none does.

    Raises ``KafkaAccessError`` when a broker refuses the credentials or certificates.
    """
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            conn = await create_conn(
                host.strip("[]"), int(port), request_timeout_ms=int(timeout * 1000), **options
            )
        except Exception as exc:
            # aiokafka closed the connection; let its (TLS) transport finish closing, so that
            # none is left half-closed when the caller's event loop ends.
            await asyncio.sleep(_CLOSE_GRACE_SECONDS)
            refusal = _refusal(server, exc, options)
            if refusal is not None:
                raise refusal from None
            logger.debug("kafka probe failed", extra={"server": server, "error": repr(exc)})
            continue
        try:
            return BrokerAccess(server, await _grants_producer_id(conn))
        finally:
            closed = conn.close()
            if closed is not None:  # resolves once the transport is gone
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(closed), _CLOSE_GRACE_SECONDS * 10)
    return None


async def check_access(settings: Settings, timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
    """Raise ``KafkaAccessError`` when a reachable broker refuses ``settings``' credentials."""
    await probe_access(settings.kafka_servers, kafka_client_options(settings), timeout)


async def watch_access(settings: Settings, retry_seconds: float = 2.0) -> None:
    """Return once a broker accepts ``settings``' credentials; raise ``KafkaAccessError``
    as soon as one refuses them. An unreachable broker is probed again every
    ``retry_seconds``, so a component that starts before Kafka still fails fast later."""
    options = kafka_client_options(settings)
    while await probe_access(settings.kafka_servers, options) is None:
        await asyncio.sleep(retry_seconds)


async def use_idempotence(settings: Settings) -> bool:
    """``KAFKA_IDEMPOTENCE`` resolved: ``auto`` asks the broker for a producer id."""
    if settings.kafka_idempotence != "auto":
        return settings.kafka_idempotence == "true"
    access = await probe_access(settings.kafka_servers, kafka_client_options(settings))
    enabled = access is not None and access.idempotence
    logger.info(
        "idempotent producer " + ("on" if enabled else "off: the broker grants no producer id"),
        extra={"kafka_idempotence": "auto"},
    )
    return enabled


async def _grants_producer_id(conn: Any, attempts: int = 20) -> bool:
    """True when the broker grants a producer id; a broker that just started may say
    "coordinator loading" (retriable) for a few seconds, Tansu answers an unknown error."""
    for _ in range(attempts):
        try:
            response = await conn.send(InitProducerIdRequest(None, 60_000))
        except (TimeoutError, errors.KafkaError, OSError):
            return False
        if response.error_code == 0:
            return bool(response.producer_id >= 0)
        if not errors.for_code(response.error_code).retriable:
            return False
        await asyncio.sleep(0.5)
    return False


def _refusal(
    server: str, exc: BaseException, options: Mapping[str, Any]
) -> KafkaAccessError | None:
    """The ``KafkaAccessError`` that ``exc`` means, or None for a mere connection failure."""
    if isinstance(exc, errors.KafkaConnectionError) and exc.__cause__ is not None:
        exc = exc.__cause__  # aiokafka wraps what closed the connection
    if isinstance(exc, asyncio.IncompleteReadError) and _is_tls_record(exc.expected):
        return KafkaAccessError(
            "KAFKA_SECURITY_PROTOCOL",
            f"the broker at {server} answered with TLS: use SSL or SASL_SSL for this listener",
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or str(exc)
        if "mismatch" in reason:
            return KafkaAccessError(
                "KAFKA_SSL_CHECK_HOSTNAME",
                f"the certificate of the broker at {server} does not name that host "
                f"({reason}): list the brokers by a name their certificate holds in "
                "KAFKA_BOOTSTRAP_SERVERS, or set KAFKA_SSL_CHECK_HOSTNAME=false",
            )
        return KafkaAccessError(
            "KAFKA_SSL_CA_FILE",
            f"the certificate of the broker at {server} is not trusted ({reason}): set "
            "KAFKA_SSL_CA_FILE to the PEM file of the CA that signed it",
        )
    if isinstance(exc, (errors.SaslAuthenticationFailed, errors.AuthenticationFailedError)):
        password = options.get("sasl_plain_password") or ""
        detail = str(exc).replace(password, "***") if password else str(exc)
        return KafkaAccessError(
            "KAFKA_SASL_PASSWORD",
            f"the broker at {server} refused user {options.get('sasl_plain_username')!r} "
            f"with {options.get('sasl_mechanism')} ({detail}): check KAFKA_SASL_USERNAME "
            "and KAFKA_SASL_PASSWORD",
        )
    if isinstance(exc, errors.UnsupportedSaslMechanismError):
        return KafkaAccessError(
            "KAFKA_SASL_MECHANISM",
            f"the broker at {server} does not enable {options.get('sasl_mechanism')}",
        )
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if reason == "WRONG_VERSION_NUMBER":
            return KafkaAccessError(
                "KAFKA_SECURITY_PROTOCOL",
                f"the broker at {server} does not speak TLS: use PLAINTEXT or SASL_PLAINTEXT "
                "for this listener",
            )
        return KafkaAccessError(
            "KAFKA_SSL_CERT_FILE",
            f"the broker at {server} refused the TLS handshake ({reason}): it may want a "
            "client certificate it trusts in KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE",
        )
    return None


def _is_tls_record(size: int | None) -> bool:
    """True when a response "size" is really a TLS record header (alert or handshake)."""
    return size is not None and size >> 24 in (0x15, 0x16) and (size >> 16) & 0xFF == 0x03
