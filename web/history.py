"""``GET /?at=<time>``: the top list as it was at a moment, read from the raw topics.

The live list comes from the replica of the top topic; a past one is recomputed from the
raw snapshot topics by a ``topcoins.history.HistoryReader``: the latest ranking
and price snapshot fetched at or before ``at``, joined exactly as the stream worker joins
them. So it can go back as far as the raw topics retain (``retention.ms`` 7 days; Kafka
deletes whole segments, so a little more may remain).

``HistoricalLists`` asks its reader, turns the reader's errors into HTTP answers and
renders the result (``rendered.render_historical``). It asks for the list already encoded
(``presented_at(at, rendered.past_list_of)``): the worker process that joins also encodes
the rows, and the reader keeps that ``PastList`` for every other moment of the same pair.
The errors:

* ``TimeInFuture``: 400 ``at_in_future``;
* ``HistoryUnavailable`` (before the retained history, or no history yet): 404
  ``history_unavailable`` with ``earliest``, the first moment that can be answered (or
  null);
* ``HistoryReadError`` (the broker failed or timed out), or any other exception: 503
  ``history_read_failed`` with ``Retry-After``; the cause is logged, not shown to the
  client.

Every question goes through an ``AtAdmission`` (one at a time, a paced start, a bounded
queue, a time limit: 503 ``history_busy`` / ``history_timeout`` past them).

The web app creates its reader in its lifespan (``history_reader``; it connects to Kafka
on the first ``at`` question) and closes it on shutdown. A reader passed to
``create_app(..., history=...)`` is the caller's to open and close.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from topcoins.domain import AliasTable
from topcoins.formats import iso_utc
from topcoins.history import (
    HistoryReader,
    HistoryReadError,
    HistoryUnavailable,
    Offload,
    TimeInFuture,
)
from topcoins.history.caches import Present
from topcoins.kafka_security import kafka_client_options
from topcoins.settings import Settings
from topcoins.tracing import context_from_headers, start_span
from topcoins.web.admission import AtAdmission
from topcoins.web.errors import HistoryNotFound, HistoryReadFailed, InvalidParameter
from topcoins.web.params import Format
from topcoins.web.rendered import PastList, past_list_of, render_historical
from topcoins.web.responses import PreparedResponse

__all__ = ["HistoricalLists", "HistoryLookup", "history_reader"]

logger = logging.getLogger(__name__)


class HistoryLookup(Protocol):
    """Looks up the list in force at a past time: what ``GET /?at=`` needs from a history
    reader (``HistoryReader`` or a test fake)."""

    async def presented_at(self, at: datetime, present: Present) -> Any:
        """``present`` of the joined list in force at ``at``; raises ``TimeInFuture``,
        ``HistoryUnavailable`` or ``HistoryReadError``."""
        ...


class HistoricalLists:
    """Answers ``GET /?at=`` from ``reader``; None until the app's lifespan sets one.

    ``admission`` bounds the requests in progress (default: the settings' defaults)."""

    def __init__(
        self, reader: HistoryLookup | None = None, admission: AtAdmission | None = None
    ) -> None:
        self.reader = reader
        defaults = Settings()
        self.admission = admission or AtAdmission(
            defaults.at_max_waiting, defaults.at_timeout_seconds, defaults.at_max_per_second
        )

    async def response(
        self, at: datetime, fmt: Format, limit: int, *, traceparent: bytes | None = None
    ) -> PreparedResponse:
        """The list as it was at ``at`` (UTC); raises ``RequestError`` subclasses.

        Traced (when tracing is on) as one server span, its wait for admission included,
        in the caller's trace when the request carried a ``traceparent``."""
        with start_span(
            "GET /?at",
            kind="server",
            context=context_from_headers([("traceparent", traceparent)] if traceparent else []),
            attributes={"topcoins.at": iso_utc(at)},
        ):
            return await self.admission.run(lambda: self._response(at, fmt, limit))

    async def _response(self, at: datetime, fmt: Format, limit: int) -> PreparedResponse:
        reader = self.reader
        if reader is None:
            raise HistoryReadFailed(
                "the history reader is not running (the server is starting or stopping); "
                "retry in a few seconds"
            )
        try:
            past: PastList = await reader.presented_at(at, past_list_of)
        except TimeInFuture as exc:
            raise InvalidParameter("at_in_future", f"{exc}; ask for a past moment") from exc
        except HistoryUnavailable as exc:
            raise HistoryNotFound(_not_retained(at, exc.earliest), iso_utc(exc.earliest)) from exc
        except HistoryReadError as exc:
            logger.warning("reading the raw topics failed", exc_info=exc, extra={"at": iso_utc(at)})
            raise HistoryReadFailed() from exc
        except Exception as exc:  # anything unforeseen is a logged 503, never a 500
            logger.error(
                "answering an at= question failed", exc_info=exc, extra={"at": iso_utc(at)}
            )
            raise HistoryReadFailed() from exc
        return render_historical(past, at, fmt, limit)


def history_reader(
    settings: Settings, clock: Callable[[], float], offload: Offload | None = None
) -> HistoryReader:
    """The web app's reader of the raw topics, with the worker's alias table; ``clock``
    (unix seconds, the app's) decides what is in the future; ``offload`` runs the
    decoding and the join (``web.offload.ProcessOffload``). It connects on first use."""
    return HistoryReader(
        settings.kafka_servers,
        settings.topics,
        AliasTable.load(),
        clock=lambda: datetime.fromtimestamp(clock(), UTC),
        fetch_wait_ms=settings.consumer_fetch_wait_ms,
        client_id=f"{settings.topic_prefix}-web-history",
        offload=offload,
        client_options=kafka_client_options(settings),
    )


def _not_retained(at: datetime, earliest: datetime | None) -> str:
    if earliest is None:
        return (
            f"there is no list for {iso_utc(at)}: the raw topics hold no readable ranking "
            "snapshot from before then (none may have been published yet)"
        )
    return (
        f"there is no list for {iso_utc(at)}: the raw topics keep about 7 days, and the "
        f"earliest moment they can answer is {iso_utc(earliest)}"
    )
