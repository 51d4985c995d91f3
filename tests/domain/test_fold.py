"""The replay fold as a pure function: which raw snapshots fresh state accepts, in which
order, and how many generations they make."""

from __future__ import annotations

import random

import pytest

from topcoins.domain import FoldEntry, fold

RANKS, PRICES = "p.ranks.v1", "p.prices.v1"


def r(timestamp: int, snapshot_id: str | None, offset: int | None = None) -> FoldEntry:
    """A ranking message (its offset defaults to its timestamp)."""
    return FoldEntry(timestamp, RANKS, timestamp if offset is None else offset, snapshot_id)


def p(timestamp: int, snapshot_id: str | None, offset: int | None = None) -> FoldEntry:
    """A price message (its offset defaults to its timestamp)."""
    return FoldEntry(timestamp, PRICES, timestamp if offset is None else offset, snapshot_id)


@pytest.mark.parametrize(
    ("entries", "ranks", "prices", "generations", "duplicates"),
    [
        pytest.param([], [], [], 0, 0, id="empty"),
        pytest.param([r(1, "a"), r(2, "b")], ["a", "b"], [], 2, 0, id="rankings-only"),
        pytest.param([p(1, "x"), p(2, "y")], [], ["x", "y"], 0, 0, id="prices-wait-for-a-ranking"),
        pytest.param([p(1, "x"), r(2, "a"), p(3, "y")], ["a"], ["x", "y"], 2, 0, id="interleaved"),
        pytest.param([r(1, "a"), r(2, "a")], ["a"], [], 1, 1, id="retried-publish-skipped"),
        pytest.param([r(1, "a"), r(2, "b"), r(3, "a")], ["a", "b", "a"], [], 3, 0, id="id-back"),
        pytest.param([r(1, None), r(2, None)], [None, None], [], 2, 0, id="no-id-never-a-repeat"),
        pytest.param([r(5, "b"), r(1, "a")], ["a", "b"], [], 2, 0, id="by-fetched-at-not-arrival"),
        # At one timestamp the topic names decide: "p.prices.v1" < "p.ranks.v1".
        pytest.param([r(1, "a"), p(1, "x")], ["a"], ["x"], 1, 0, id="same-time-prices-first"),
        pytest.param(
            [r(1, "b", offset=9), r(1, "a", offset=3)], ["a", "b"], [], 2, 0, id="then-offset"
        ),
    ],
)
def test_fold(entries, ranks, prices, generations, duplicates):
    folded = fold(entries, RANKS, PRICES)

    assert [e.snapshot_id for e in folded.accepted[RANKS]] == ranks
    assert [e.snapshot_id for e in folded.accepted[PRICES]] == prices
    assert (folded.generations, folded.duplicates) == (generations, duplicates)


def test_the_order_of_the_input_does_not_matter():
    entries = [r(1, "a"), p(2, "x"), r(3, "a"), r(4, "b"), p(4, "y"), p(6, "y"), r(7, "c")]
    shuffled = entries[:]
    random.Random(7).shuffle(shuffled)

    assert fold(shuffled, RANKS, PRICES) == fold(entries, RANKS, PRICES)
