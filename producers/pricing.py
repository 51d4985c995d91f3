"""One poll of the pricing producer: the full listing, or a quotes refresh of the ranked.

A full listing of ``depth`` costs ``depth/200`` credits; the quotes of the ``N`` assets
the service actually ranks cost ``N/100``. So the producer fetches the full listing
rarely (when it has none, or the last one started ``full_listing_seconds`` ago) and in
between refreshes only the quotes of the ranked assets: the ids of the latest top list
(``ranked_ids``), or, until there is one, the first ``max_ids`` of the last listing.

A quotes refresh is published as an ordinary ``PriceSnapshot``: the last full listing
with the fresh quotes in place of the old ones (same order, same ``total_count``) under a
new ``snapshot_id`` and ``fetched_at``, so the stream worker needs no change. Quotes that
were not refreshed keep their own ``last_updated``, which says how old they are.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from topcoins.producers._client import utcnow
from topcoins.producers.coinmarketcap import listing_page_limits
from topcoins.schemas.records import PriceQuote, PriceSnapshot, utc_millis

__all__ = ["PriceSnapshotFetcher", "merge_quotes"]

logger = logging.getLogger(__name__)


class PricingClient(Protocol):
    """What ``PriceSnapshotFetcher`` needs from ``CoinMarketCapClient``."""

    async def fetch_listings(self, depth: int) -> PriceSnapshot: ...

    async def fetch_quotes(self, ids: Sequence[int]) -> tuple[PriceQuote, ...]: ...


def merge_quotes(
    base: PriceSnapshot, fresh: Sequence[PriceQuote], *, snapshot_id: str, fetched_at: datetime
) -> PriceSnapshot:
    """``base`` with each quote replaced by the ``fresh`` one of the same id (new ids last)."""
    by_id = {quote.cmc_id: quote for quote in fresh}
    merged = [by_id.pop(quote.cmc_id, quote) for quote in base.quotes]
    merged.extend(by_id.values())
    return PriceSnapshot(snapshot_id, fetched_at, base.total_count, tuple(merged))


class PriceSnapshotFetcher:
    """``await source()`` returns the next ``PriceSnapshot`` (see the module docstring).

    ``full_listing_seconds`` None turns the quotes refresh off. ``max_ids`` caps a
    refresh (the budget is planned for it). ``last_kind`` is ``"listing"`` or ``"quotes"``.
    """

    def __init__(
        self,
        client: PricingClient,
        *,
        depth: int,
        max_ids: int,
        full_listing_seconds: float | None,
        ranked_ids: Callable[[], Sequence[int] | None] = lambda: None,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        if depth < 1 or max_ids < 1:
            raise ValueError("depth and max_ids must be positive")
        self._client = client
        self._depth = depth
        self._max_ids = max_ids
        self._full_every = full_listing_seconds
        self._ranked_ids = ranked_ids
        self._monotonic = monotonic
        self._now = now
        self._base: PriceSnapshot | None = None
        self._base_started: float | None = None
        self.last_kind: str | None = None

    def __repr__(self) -> str:
        return f"PriceSnapshotFetcher(depth={self._depth}, full_every={self._full_every})"

    async def __call__(self) -> PriceSnapshot:
        base = self._base
        ids = self._refresh_ids(base)
        if base is None or not ids:
            return await self._full_listing()
        fresh = await self._client.fetch_quotes(ids)
        self.last_kind = "quotes"
        logger.debug("quotes refresh", extra={"asked": len(ids), "answered": len(fresh)})
        return merge_quotes(
            base, fresh, snapshot_id=uuid.uuid4().hex, fetched_at=utc_millis(self._now())
        )

    def _refresh_ids(self, base: PriceSnapshot | None) -> list[int]:
        """The ids to refresh by quotes; empty when this poll needs the full listing."""
        if self._full_every is None or base is None or self._base_started is None:
            return []
        if self._monotonic() - self._base_started >= self._full_every:
            return []
        ranked = self._ranked_ids()
        source = ranked if ranked else [quote.cmc_id for quote in base.quotes]
        return list(dict.fromkeys(source))[: self._max_ids]

    async def _full_listing(self) -> PriceSnapshot:
        started = self._monotonic()
        snapshot = await self._client.fetch_listings(self._depth)
        self._base, self._base_started, self.last_kind = snapshot, started, "listing"
        logger.info(
            "full listing fetched",
            extra={
                "quotes": len(snapshot.quotes),
                "calls": len(listing_page_limits(self._depth)),
                "next_full_in_seconds": self._full_every,
            },
        )
        return snapshot
