"""The worker's Faust topic objects, declared from the shared contract in ``schemas.topics``.

The worker does not create these topics: ``run_worker`` creates them first with their
declared settings (``kafka_admin.ensure_topics``), and Faust only declares its internal
topics (table changelogs). Values stay raw bytes; the worker decodes them with
``schemas.codec``.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TopicT

from topcoins.schemas.topics import Topics, TopicSpec

__all__ = ["WorkerTopics", "declare_topics"]


@dataclass(frozen=True)
class WorkerTopics:
    """The two input topics and the output topic, as Faust topics, with their contract."""

    contract: Topics
    ranks: TopicT
    prices: TopicT
    top: TopicT


def declare_topics(app: faust.App, contract: Topics) -> WorkerTopics:
    """Declare the contract's topics on ``app`` (same names and partition counts)."""
    return WorkerTopics(
        contract=contract,
        ranks=_declare(app, contract.ranks, key_type=bytes),
        prices=_declare(app, contract.prices, key_type=bytes),
        top=_declare(app, contract.top, key_type=str),
    )


def _declare(app: faust.App, spec: TopicSpec, *, key_type: type) -> TopicT:
    return app.topic(
        spec.name,
        key_type=key_type,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.partitions,
        internal=False,
    )
