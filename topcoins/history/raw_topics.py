"""The raw snapshot topics as the history reader sees them, and what one raw record says.

Each raw topic (``<prefix>.ranks.v1``, ``<prefix>.prices.v1``) has one partition; a
message's Kafka timestamp is its snapshot's ``fetched_at``, and its ``snapshot_id`` and
``schema`` headers name the snapshot and its record type without decoding it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from topcoins.schemas.records import PriceSnapshot, RankingSnapshot

__all__ = [
    "RawRecord",
    "RawTopic",
    "header",
    "millis",
    "snapshot_id",
    "time_of",
]

RawRecord = ConsumerRecord[Any, Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True)
class RawTopic:
    """One raw snapshot topic and the record type its messages hold."""

    name: str
    record_type: type[RankingSnapshot] | type[PriceSnapshot]

    @property
    def tp(self) -> TopicPartition:
        """Its only partition."""
        return TopicPartition(self.name, 0)

    @property
    def kind(self) -> str:
        """``ranking`` or ``price``, for messages."""
        return "ranking" if self.record_type is RankingSnapshot else "price"


def header(record: RawRecord, name: str) -> str | None:
    """The record's header ``name`` as text (None: absent or not UTF-8)."""
    for key, value in record.headers or ():
        if key == name:
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


def snapshot_id(record: RawRecord | None) -> str | None:
    """The ``snapshot_id`` header of ``record``, if any."""
    return header(record, "snapshot_id") if record is not None else None


def time_of(record: RawRecord | None) -> datetime | None:
    """The record's timestamp (its snapshot's ``fetched_at``)."""
    return datetime.fromtimestamp(record.timestamp / 1000, UTC) if record is not None else None


def millis(moment: datetime) -> int:
    """``moment`` as a Kafka timestamp (milliseconds since the epoch, rounded down)."""
    return (moment - _EPOCH) // _MILLISECOND
