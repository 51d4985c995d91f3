"""The producers' health as the web service knows it: the latest ``ProducerStatus`` per provider.

The producers publish one ``ProducerStatus`` after every poll to the compacted status
topic, keyed by provider name. ``StatusBoard`` applies those messages in offset order;
like ``TopListBuilder`` it knows nothing about Kafka and raises ``InvalidMessage`` for a
message it cannot use, so the replica logs, counts and skips it. Statuses are not part of
top-list generations: each one takes effect as soon as it is applied.

``statuses`` is replaced (never mutated) on every change, so a reader can tell by
identity whether anything changed since it last looked. A status whose ``last_attempt_at``
is more than ``FUTURE_TOLERANCE`` ahead of the clock is refused: held, it would make every
real status after it look older, and the provider's status would never change again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from topcoins.schemas.codec import decode
from topcoins.schemas.records import ProducerStatus
from topcoins.schemas.stamps import FUTURE_TOLERANCE, from_future
from topcoins.topic_reader import UnusableMessage, key_text
from topcoins.web.errors import InvalidMessage

__all__ = ["FUTURE_TOLERANCE", "StatusBoard"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class StatusBoard:
    """The latest ``ProducerStatus`` of each provider."""

    def __init__(self, clock: Callable[[], datetime] = _utc_now) -> None:
        self.statuses: Mapping[str, ProducerStatus] = MappingProxyType({})
        self.clock = clock

    def apply(self, key: bytes | str | None, value: bytes | None) -> bool:
        """Apply one status-topic message; True when it changed ``statuses``.

        A tombstone forgets the provider. A status older (by ``last_attempt_at``) than the
        one already held is ignored, so two producer instances overlapping during a rollout
        cannot move a provider's status backwards.
        """
        try:
            provider = key_text(key, topic="status", keyed_by="provider")
        except UnusableMessage as exc:
            raise InvalidMessage(f"status {exc}") from exc
        current = dict(self.statuses)
        if value is None:
            if current.pop(provider, None) is None:
                return False
            self.statuses = MappingProxyType(current)
            return True
        try:
            record = decode(value)
        except Exception as exc:  # any codec failure, e.g. a timestamp out of datetime's range
            raise InvalidMessage(f"status for {provider!r}: {exc!r}") from exc
        if not isinstance(record, ProducerStatus):
            raise InvalidMessage(
                f"{type(record).__name__} does not belong on the status topic (key {provider!r})"
            )
        if record.provider != provider:
            raise InvalidMessage(
                f"ProducerStatus of provider {record.provider!r} under key {provider!r}; "
                "statuses must be keyed by their provider"
            )
        if from_future(record.last_attempt_at, self.clock()):
            raise InvalidMessage(
                f"status for {provider!r} attempted at {record.last_attempt_at.isoformat()}, "
                "in the future"
            )
        held = current.get(provider)
        if held is not None and record.last_attempt_at < held.last_attempt_at:
            return False
        current[provider] = record
        self.statuses = MappingProxyType(current)
        return True
