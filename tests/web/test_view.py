"""TopListBuilder: generations are published only when complete, in rank order."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import pytest

from tests import generations
from tests.web.factories import PRICED_AT, RANKED_AT, SAMPLE_ROWS, coin, meta
from topcoins.schemas.codec import encode
from topcoins.schemas.records import TopCoin, TopListMeta
from topcoins.schemas.topics import META_KEY
from topcoins.web.errors import IncompleteGeneration, InvalidMessage, MixedGeneration
from topcoins.web.view import TopListBuilder, TopListEntry, TopListView

MK = META_KEY.encode()


def put(builder: TopListBuilder, row: TopCoin) -> None:
    assert builder.apply(row.symbol.encode(), encode(row)) is None


def close(builder: TopListBuilder, closing: TopListMeta) -> TopListView | None:
    return builder.apply(MK, encode(closing))


def symbols(view: TopListView) -> list[str]:
    return [entry.symbol for entry in view.entries]


def test_rows_then_meta_publish_a_view_in_meta_order() -> None:
    builder = TopListBuilder()
    for row in SAMPLE_ROWS:
        put(builder, row)
    view = close(builder, meta(["ETH", "BTC", "USDT", "WIF", "PEPE"], unmatched=1))

    assert view is not None
    assert symbols(view) == ["ETH", "BTC", "USDT", "WIF", "PEPE"]
    assert [entry.rank for entry in view.entries] == [1, 2, 3, 4, 5]
    assert view.entries[1] == TopListEntry(
        rank=2,
        symbol="BTC",
        name="Bitcoin",
        cmc_id=1,
        price_usd=67012.34,
        volume_24h_usd=35_210_000_000.5,
        match_rule="alias",
        rank_fetched_at=RANKED_AT,
        price_fetched_at=PRICED_AT,
        market_cap_usd=1_320_000_000_000.0,
        percent_change_24h=-1.5,
    )
    assert view.generation == 1
    assert view.total_ranked == 5
    assert view.ranking_updated_at == RANKED_AT
    assert view.prices_updated_at == PRICED_AT
    assert view.provider_total == 5012
    assert view.depth == 200
    assert view.unmatched == 1
    assert (view.ranking_snapshot_id, view.pricing_snapshot_id) == ("rank-0001", "price-0001")


def test_rank_comes_from_the_meta_not_the_row() -> None:
    builder = TopListBuilder()
    put(builder, coin("BTC", "Bitcoin", 1, 1.0, rank=7))
    view = close(builder, meta(["BTC"]))
    assert view is not None and view.entries[0].rank == 1


def test_rows_alone_publish_nothing() -> None:
    builder = TopListBuilder()
    for row in SAMPLE_ROWS:
        put(builder, row)
    assert builder.row_count == len(SAMPLE_ROWS)


def test_later_generation_reuses_unchanged_rows_and_counts_up() -> None:
    builder = TopListBuilder()
    for row in SAMPLE_ROWS:
        put(builder, row)
    first = close(builder, meta(["BTC", "ETH"]))
    put(builder, coin("ETH", "Ethereum", 1027, 3200.0))
    second = close(builder, meta(["ETH", "BTC"]))

    assert first is not None and second is not None
    assert (first.generation, second.generation) == (1, 2)
    assert [(e.symbol, e.price_usd) for e in second.entries] == [("ETH", 3200.0), ("BTC", 67012.34)]
    assert first.entries[1].price_usd == 3120.5  # a published view never changes


def test_tombstone_removes_the_row() -> None:
    builder = TopListBuilder()
    for row in SAMPLE_ROWS:
        put(builder, row)
    assert builder.apply(b"WIF", None) is None
    assert builder.row_count == len(SAMPLE_ROWS) - 1

    view = close(builder, meta(["BTC", "ETH", "USDT", "PEPE"]))
    assert view is not None and symbols(view) == ["BTC", "ETH", "USDT", "PEPE"]
    with pytest.raises(IncompleteGeneration):
        close(builder, meta(["BTC", "WIF"]))


def test_tombstone_for_an_unknown_symbol_is_harmless() -> None:
    assert TopListBuilder().apply(b"NOPE", None) is None


def test_incomplete_generation_is_not_published_and_later_completes() -> None:
    builder = TopListBuilder()
    put(builder, coin("BTC", "Bitcoin", 1, 1.0))
    with pytest.raises(IncompleteGeneration) as info:
        close(builder, meta(["BTC", "ETH", "SOL"]))
    assert info.value.missing == ("ETH", "SOL")
    assert "ETH, SOL" in str(info.value)

    put(builder, coin("ETH", "Ethereum", 1027, 2.0))
    put(builder, coin("SOL", "Solana", 5426, 3.0))
    view = close(builder, meta(["BTC", "ETH", "SOL"]))
    assert view is not None
    assert view.generation == 1  # the rejected meta used no generation number
    assert symbols(view) == ["BTC", "ETH", "SOL"]


def test_empty_generation_is_a_valid_view() -> None:
    view = close(TopListBuilder(), meta([]))
    assert view is not None and view.entries == ()


@pytest.mark.parametrize(
    ("key", "value", "error", "message"),
    [
        (None, encode(coin("BTC", "Bitcoin", 1, 1.0)), InvalidMessage, "without a key"),
        (MK, encode(meta(["BTC", "ETH", "BTC"])), InvalidMessage, "more than once: BTC"),
        (MK, encode(meta(["BTC", "SOL"])), IncompleteGeneration, "1 have no row"),
    ],
)
def test_unusable_messages_raise_replica_errors_and_leave_the_state_alone(
    key: bytes | None, value: bytes | None, error: type[Exception], message: str
) -> None:
    # Every rule of the fold: tests/topcoins/test_top_list.py.
    builder = TopListBuilder()
    put(builder, coin("BTC", "Bitcoin", 1, 1.0))
    put(builder, coin("ETH", "Ethereum", 1027, 2.0))

    with pytest.raises(error, match=message):
        builder.apply(key, value)

    view = close(builder, meta(["BTC", "ETH"]))
    assert view is not None and symbols(view) == ["BTC", "ETH"] and view.generation == 1


def test_string_keys_are_accepted() -> None:
    builder = TopListBuilder()
    row = coin("BTC", "Bitcoin", 1, 1.0)
    builder.apply("BTC", encode(row))
    view = builder.apply(META_KEY, encode(meta(["BTC"])))
    assert view is not None and symbols(view) == ["BTC"]


@pytest.mark.parametrize(
    ("price", "served"),
    [
        (67000.5, 67000.5),
        (1e-12, 1e-12),
        (None, None),
        (0.0, None),
        (-1.0, None),
        (math.nan, None),
        (math.inf, None),
    ],
)
def test_unknown_prices_are_served_as_none_never_zero(
    price: float | None, served: float | None
) -> None:
    builder = TopListBuilder()
    put(builder, coin("BTC", "Bitcoin", 1, price))
    view = close(builder, meta(["BTC"]))
    assert view is not None and view.entries[0].price_usd == served


@pytest.mark.parametrize(("volume", "served"), [(0.0, 0.0), (-5.0, None), (math.nan, None)])
def test_unusable_volumes_are_none(volume: float, served: float | None) -> None:
    builder = TopListBuilder()
    put(builder, coin("BTC", "Bitcoin", 1, 1.0, volume_24h_usd=volume))
    view = close(builder, meta(["BTC"]))
    assert view is not None and view.entries[0].volume_24h_usd == served


@pytest.mark.parametrize(
    ("market_cap", "change", "served"),
    [
        (0.0, -100.0, (0.0, -100.0)),
        (2.5e12, 1e6, (2.5e12, 1e6)),
        (-1.0, -100.5, (None, None)),
        (math.inf, math.nan, (None, None)),
        (None, None, (None, None)),
    ],
)
def test_unusable_market_caps_and_changes_are_none(market_cap, change, served) -> None:
    builder = TopListBuilder()
    row = coin("BTC", "Bitcoin", 1, 1.0, market_cap_usd=market_cap, percent_change_24h=change)
    put(builder, row)
    view = close(builder, meta(["BTC"]))
    assert view is not None
    assert (view.entries[0].market_cap_usd, view.entries[0].percent_change_24h) == served


def test_entries_keep_their_fetch_times_and_no_price_has_no_price_time(
    sample_view: TopListView,
) -> None:
    assert [(e.rank_fetched_at, e.price_fetched_at) for e in sample_view.entries] == [
        (RANKED_AT, PRICED_AT),
        (RANKED_AT, PRICED_AT),
        (RANKED_AT, PRICED_AT),
        (RANKED_AT, None),  # WIF: unmatched
        (RANKED_AT, PRICED_AT),
    ]
    builder = TopListBuilder()
    put(builder, coin("BTC", "Bitcoin", 1, math.nan))  # matched, but the price is unusable
    view = close(builder, meta(["BTC"]))
    assert view is not None and view.entries[0].price_fetched_at is None


def test_view_times_are_the_oldest_of_the_meta_and_its_rows() -> None:
    builder = TopListBuilder()
    put(builder, coin("BTC", "Bitcoin", 1, 1.0))
    older = dataclasses.replace(
        coin("ETH", "Ethereum", 1027, 2.0),
        rank_fetched_at=RANKED_AT - timedelta(minutes=5),
        price_fetched_at=PRICED_AT - timedelta(minutes=7),
    )
    put(builder, older)
    view = close(builder, meta(["BTC", "ETH"]))
    assert view is not None
    assert view.ranking_updated_at == RANKED_AT - timedelta(minutes=5)
    assert view.prices_updated_at == PRICED_AT - timedelta(minutes=7)


def test_views_are_immutable(sample_view: TopListView) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample_view.generation = 9  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample_view.entries[0].price_usd = 1.0  # type: ignore[misc]


def test_first_generation_number_is_configurable() -> None:
    builder = TopListBuilder(first_generation=41)
    view = close(builder, meta([]))
    assert view is not None and view.generation == 41


@pytest.mark.parametrize("case", generations.CASES, ids=lambda case: case.name)
def test_a_meta_whose_rows_mix_generations_is_refused(case: generations.MixCase) -> None:
    builder = TopListBuilder()
    served: list[str] = []
    for key, value in case.messages:
        try:
            view = builder.apply(key, value)
        except MixedGeneration as exc:
            assert isinstance(exc, IncompleteGeneration)  # the replica's path for both
            served.append(generations.REFUSED)
            continue
        if view is not None:
            assert {entry.cmc_id for entry in view.entries} == {
                generations.cmc_id(symbol, view.ranking_snapshot_id)
                for symbol in generations.SYMBOLS
            }  # every row of the view's own generation
            served.append(view.ranking_snapshot_id)
    assert served == case.at_metas
