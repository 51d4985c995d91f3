"""The generation rule: a meta's rows must all name the meta's snapshot pair."""

from __future__ import annotations

import pytest

from tests import generations
from topcoins.schemas.codec import decode_as
from topcoins.schemas.generation import foreign_rows, generation_of
from topcoins.schemas.records import TopCoin, TopListMeta

META = decode_as(TopListMeta, generations.meta("rank-1")[1])


def generation_rows(ranking_by_symbol: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    return {symbol: (ranking, "price-1") for symbol, ranking in ranking_by_symbol.items()}


@pytest.mark.parametrize(
    ("rankings", "foreign"),
    [
        (dict.fromkeys(generations.SYMBOLS, "rank-1"), ()),
        ({**dict.fromkeys(generations.SYMBOLS, "rank-1"), "ETH": "rank-2"}, ("ETH",)),
        ({"XRP": "rank-2", "BTC": "rank-2"}, ("BTC", "XRP")),  # in the meta's order
        ({}, ()),  # missing rows are the completeness check's business
        ({"DOGE": "rank-2"}, ()),  # a row the meta does not list does not matter
    ],
)
def test_foreign_rows(rankings, foreign):
    assert foreign_rows(META, generation_rows(rankings)) == foreign


def test_the_pricing_snapshot_is_part_of_the_generation():
    assert foreign_rows(META, {"BTC": ("rank-1", None)}) == ("BTC",)
    assert generation_of(META) == ("rank-1", "price-1")
    btc = decode_as(TopCoin, generations.row("BTC", "rank-2")[1])
    assert generation_of(btc) == ("rank-2", "price-1")
