"""The CoinMarketCap credit ledger across restarts, kept on the compacted status topic.

A ``CreditLedger`` lives in the process; without help a restarted pricing producer would
start with a clean ledger and could spend its retry tolerance again at every restart, so a
crash loop could overspend the plan. So:

* **before every call** (``JournaledPacer``): once the call is charged, the ledger's
  state (``paid_until``, as a wall-clock time) is published in the producer's
  ``ProducerStatus`` (``credits_paid_until``) and acknowledged by Kafka, before the call
  is sent. A failed publish is logged and counted, and the call goes ahead: the guarantee
  across restarts holds while Kafka takes the status (it is needed to start anyway);
* **at start** (``CreditJournal.recover``, then ``attach``): the producer reads its last
  status from the status topic and resumes the ledger from it. A status topic that cannot
  be read stops the start: an unknown ledger would not prove the budget.

A journal that was not given a ``reporter`` neither restores nor saves (a fetch opened
on its own, in a test, spends from a fresh ledger).

So any sequence of lives spends what one process running all along would: at most the
plan per 31 days.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from topcoins.producers.budget import CreditLedger
from topcoins.producers.ratelimit import Pacer
from topcoins.producers.status import StatusReporter
from topcoins.schemas.codec import decode_as
from topcoins.schemas.records import ProducerStatus
from topcoins.schemas.topics import TopicSpec

__all__ = ["CreditJournal", "JournaledPacer", "last_status"]

logger = logging.getLogger(__name__)

_POLL_MS = 200


async def last_status(
    bootstrap_servers: str,
    topic: TopicSpec,
    key: bytes,
    *,
    client_options: Mapping[str, Any] | None = None,
    timeout_s: float = 30.0,
) -> ProducerStatus | None:
    """The last readable ``ProducerStatus`` under ``key`` on ``topic`` (None: none yet,
    or no such topic).

    Reads the whole (compacted) topic with a group-less consumer; raises ``TimeoutError``
    when it cannot get to the end within ``timeout_s``, ``KafkaError`` when Kafka fails.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **dict(client_options or {}),
    )
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()
        raise
    try:
        async with asyncio.timeout(timeout_s):
            # Never assign a missing topic: the metadata request could auto-create it.
            if topic.name not in await consumer.topics():
                return None
            tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            found: bytes | None = None
            while True:
                behind = []
                for tp in tps:
                    end = max(ends[tp], consumer.highwater(tp) or 0)
                    if await consumer.position(tp) < end:
                        behind.append(tp)
                if not behind:
                    break
                batch = await consumer.getmany(*behind, timeout_ms=_POLL_MS)
                for records in batch.values():
                    for record in records:
                        if record.key == key and record.value is not None:
                            found = record.value
    finally:
        await consumer.stop()
    if found is None:
        return None
    try:
        return decode_as(ProducerStatus, found)
    except Exception as exc:  # an unreadable status is no ledger; say so
        logger.warning("the last producer status does not decode", extra={"error": repr(exc)})
        return None


class CreditJournal:
    """Saves a ``CreditLedger`` through a ``StatusReporter`` and restores it at start.

    The producer sets ``reporter`` and awaits ``recover()`` before it opens its fetch,
    which ``attach``-es its new ledger.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        status_topic: TopicSpec,
        key: bytes,
        *,
        client_options: Mapping[str, Any] | None = None,
        unix_now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.status_topic = status_topic
        self.key = key
        self.client_options = dict(client_options or {})
        self.ledger: CreditLedger | None = None
        self.reporter: StatusReporter | None = None
        self.recovered: datetime | None = None  # the saved ``paid_until``, once recovered
        self._unix_now = unix_now
        self._monotonic = monotonic

    async def recover(self) -> datetime | None:
        """Read the last saved ledger state from the status topic (None: none saved)."""
        status = await last_status(
            self.bootstrap_servers,
            self.status_topic,
            self.key,
            client_options=self.client_options,
        )
        self.recovered = status.credits_paid_until if status is not None else None
        if self.recovered is None:
            logger.info("no saved credit ledger: starting a new one")
        else:
            logger.info(
                "credit ledger recovered from the status topic",
                extra={
                    "paid_until": self.recovered.isoformat(),
                    "ahead_seconds": round(self.recovered.timestamp() - self._unix_now(), 3),
                },
            )
        return self.recovered

    def attach(self, ledger: CreditLedger) -> None:
        """Use ``ledger`` from now on, resumed from the recovered state (if any)."""
        if self.reporter is None:
            return
        self.ledger = ledger
        if self.recovered is not None:
            ledger.restore(self._monotonic() + self.recovered.timestamp() - self._unix_now())

    async def save(self) -> None:
        """Publish the ledger's state in the producer's status (and wait for the ack)."""
        if self.ledger is None or self.reporter is None:
            return
        unix_now = self._unix_now()
        paid_until = unix_now + self.ledger.paid_until - self._monotonic()
        await self.reporter.credits_charged(
            datetime.fromtimestamp(paid_until, UTC), datetime.fromtimestamp(unix_now, UTC)
        )


class JournaledPacer(Pacer):
    """A ``Pacer`` that saves the credit ledger after charging a call, before it is sent."""

    def __init__(self, *args: Any, journal: CreditJournal, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.journal = journal

    async def acquire(self, credits: int = 1) -> None:
        await super().acquire(credits)
        await self.journal.save()
