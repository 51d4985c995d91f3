"""PriceSnapshotFetcher: the full listing rarely, the ranked assets' quotes in between."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from topcoins.producers.errors import ServerError
from topcoins.producers.pricing import PriceSnapshotFetcher, merge_quotes
from topcoins.schemas.records import PriceQuote, PriceSnapshot

AT = datetime(2024, 9, 17, 16, 0, tzinfo=UTC)


def quote(cmc_id: int, price: float, minutes: int = 0) -> PriceQuote:
    return PriceQuote(
        cmc_id, f"S{cmc_id}", f"Coin {cmc_id}", f"coin-{cmc_id}", cmc_id, price, 1e6,
        AT + timedelta(minutes=minutes),
    )  # fmt: skip


class FakeClient:
    """Listings of ids 1..depth at price 1.0 (then 2.0, ...); quotes at 100 + call number."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.fail_quotes = False

    async def fetch_listings(self, depth: int) -> PriceSnapshot:
        self.calls.append(("listings", depth))
        price = float(sum(1 for kind, _ in self.calls if kind == "listings"))
        quotes = tuple(quote(i, price) for i in range(1, depth + 1))
        return PriceSnapshot(f"listing-{len(self.calls)}", AT, 9813, quotes)

    async def fetch_quotes(self, ids: Sequence[int]) -> tuple[PriceQuote, ...]:
        self.calls.append(("quotes", list(ids)))
        if self.fail_quotes:
            raise ServerError("HTTP 502", provider="coinmarketcap")
        return tuple(quote(i, 100.0 + len(self.calls), minutes=5) for i in ids if i != 404)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def source(client: FakeClient, clock: Clock, *, ranked=lambda: None, every=3600.0, **kw):
    return PriceSnapshotFetcher(
        client,
        depth=kw.pop("depth", 10),
        max_ids=kw.pop("max_ids", 4),
        full_listing_seconds=every,
        ranked_ids=ranked,
        monotonic=clock,
        now=lambda: AT + timedelta(minutes=5),
    )


async def test_first_a_full_listing_then_quotes_of_the_ranked_ids():
    client, clock = FakeClient(), Clock()
    pricing = source(client, clock, ranked=lambda: (7, 3, 7, 9))

    listing = await pricing()
    clock.now = 600.0
    refreshed = await pricing()

    assert client.calls == [("listings", 10), ("quotes", [7, 3, 9])]
    assert pricing.last_kind == "quotes"
    assert refreshed.snapshot_id != listing.snapshot_id
    assert refreshed.fetched_at == AT + timedelta(minutes=5)
    assert refreshed.total_count == listing.total_count
    assert [q.cmc_id for q in refreshed.quotes] == list(range(1, 11))  # the listing's order
    prices = {q.cmc_id: q.price_usd for q in refreshed.quotes}
    assert prices[3] == prices[7] == prices[9] == 102.0
    assert prices[1] == 1.0  # not refreshed: the listing's quote, with its own last_updated


async def test_without_a_top_list_the_first_ids_of_the_listing_are_refreshed():
    client, clock = FakeClient(), Clock()
    pricing = source(client, clock, max_ids=4)

    await pricing()
    await pricing()

    assert client.calls[1] == ("quotes", [1, 2, 3, 4])


async def test_the_refresh_never_asks_for_more_than_max_ids():
    client, clock = FakeClient(), Clock()
    pricing = source(client, clock, ranked=lambda: list(range(1, 50)), max_ids=4)

    await pricing()
    await pricing()

    assert client.calls[1] == ("quotes", [1, 2, 3, 4])


async def test_the_full_listing_comes_back_when_it_is_due():
    client, clock = FakeClient(), Clock()
    pricing = source(client, clock, every=3600.0)

    await pricing()
    clock.now = 3599.0
    await pricing()
    clock.now = 3600.0
    snapshot = await pricing()

    assert [kind for kind, _ in client.calls] == ["listings", "quotes", "listings"]
    assert pricing.last_kind == "listing"
    assert snapshot.quotes[0].price_usd == 2.0


async def test_refresh_off_means_a_full_listing_every_poll():
    client, clock = FakeClient(), Clock()
    pricing = source(client, clock, every=None)

    await pricing()
    await pricing()

    assert [kind for kind, _ in client.calls] == ["listings", "listings"]


async def test_a_failed_refresh_keeps_the_listing_for_the_next_one():
    client, clock = FakeClient(), Clock()
    pricing = source(client, clock)
    await pricing()
    client.fail_quotes = True

    with pytest.raises(ServerError):
        await pricing()

    client.fail_quotes = False
    refreshed = await pricing()
    assert [kind for kind, _ in client.calls] == ["listings", "quotes", "quotes"]
    assert refreshed.quotes[0].price_usd == 103.0


async def test_a_failed_listing_is_retried_as_a_listing():
    class Failing(FakeClient):
        async def fetch_listings(self, depth: int) -> PriceSnapshot:
            self.calls.append(("listings", depth))
            raise ServerError("HTTP 500", provider="coinmarketcap")

    client, clock = Failing(), Clock()
    pricing = source(client, clock)

    for _ in range(2):
        with pytest.raises(ServerError):
            await pricing()

    assert [kind for kind, _ in client.calls] == ["listings", "listings"]


def test_merge_replaces_by_id_keeps_order_and_appends_new_ids():
    base = PriceSnapshot("base", AT, 3, (quote(1, 1.0), quote(2, 1.0), quote(3, 1.0)))

    merged = merge_quotes(base, [quote(3, 9.0), quote(99, 5.0)], snapshot_id="new", fetched_at=AT)

    assert [(q.cmc_id, q.price_usd) for q in merged.quotes] == [
        (1, 1.0),
        (2, 1.0),
        (3, 9.0),
        (99, 5.0),
    ]
    assert (merged.snapshot_id, merged.total_count) == ("new", 3)
