"""The Faust worker's ``broker_credentials``, from the options every aiokafka client takes.

``faust_credentials(settings)`` turns ``kafka_client_options(settings)`` into Faust's
SASL or SSL credentials, so the worker authenticates exactly as the other clients do.
"""

from __future__ import annotations

import faust
from faust.types.auth import CredentialsT

from topcoins.kafka_security import kafka_client_options
from topcoins.settings import Settings

__all__ = ["faust_credentials"]


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's ``broker_credentials`` of ``settings``; None for ``PLAINTEXT``. Raises
    ``KafkaAccessError`` as ``kafka_client_options`` does."""
    options = kafka_client_options(settings)
    context = options.get("ssl_context")
    if "sasl_mechanism" in options:
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            ssl_context=context,
            mechanism=options["sasl_mechanism"],
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None
