"""TopListFold: the rules every reader of the top topic applies, with plain bytes."""

from __future__ import annotations

import pytest

from tests import generations
from tests.web.factories import RANKED_AT, coin, meta
from topcoins.schemas.codec import encode
from topcoins.schemas.records import RankingSnapshot
from topcoins.schemas.topics import META_KEY
from topcoins.top_list import MixedGeneration, TopListFold
from topcoins.topic_reader import UnusableMessage

MK = META_KEY.encode()
BTC = encode(coin("BTC", "Bitcoin", 1, 1.0))


def fold_of(*symbols: str) -> TopListFold:
    fold = TopListFold()
    for symbol in symbols:
        assert fold.apply(symbol.encode(), encode(coin(symbol, symbol.title(), 1, 1.0))) is None
    return fold


def test_a_meta_closes_its_generation_with_the_rows_it_lists() -> None:
    fold = fold_of("BTC", "ETH", "OLD")
    assert fold.apply(b"OLD", None) is None  # a tombstone forgets the row
    assert fold.row_count == 2

    closed = fold.apply(MK, encode(meta(["ETH", "BTC", "OLD"])))

    assert closed is not None and closed.meta.symbols == ("ETH", "BTC", "OLD")
    assert set(closed.rows) == {"ETH", "BTC"}  # a listed symbol without a row is left out


def test_string_keys_are_accepted() -> None:
    fold = TopListFold()
    fold.apply("BTC", BTC)
    closed = fold.apply(META_KEY, encode(meta(["BTC"])))
    assert closed is not None and list(closed.rows) == ["BTC"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (b"BTC", b"not avro at all", "not Avro single-object encoded"),
        (b"BTC", b"\xc3\x01" + b"\x00" * 8 + b"x", "unknown schema fingerprint"),
        (b"BTC", BTC[:-3], "cannot decode TopCoin"),
        (None, BTC, "without a key; the top topic is keyed by symbol"),
        (b"\xff\xfe", BTC, "not UTF-8"),
        (b"ETH", BTC, "rows must be keyed by their symbol"),
        (MK, BTC, "rows must be keyed by their symbol"),
        (b"BTC", encode(meta(["BTC"])), "expected '_meta'"),
        (MK, None, "the meta key is never deleted"),
        (MK, encode(meta(["BTC", "ETH", "BTC"])), "more than once: BTC"),
        (
            b"cryptocompare",
            encode(RankingSnapshot("s", RANKED_AT, 1, None, ())),
            "does not belong on the top topic",
        ),
    ],
)
def test_unusable_messages_raise_and_leave_the_state_alone(
    key: bytes | None, value: bytes | None, message: str
) -> None:
    fold = fold_of("BTC", "ETH")

    with pytest.raises(UnusableMessage, match=message):
        fold.apply(key, value)

    closed = fold.apply(MK, encode(meta(["BTC", "ETH"])))
    assert closed is not None and set(closed.rows) == {"BTC", "ETH"}


def outcome(fold: TopListFold, key: bytes, value: bytes | None) -> str | None:
    """What a message did: closed a generation (its ranking id), was REFUSED, or neither."""
    try:
        closed = fold.apply(key, value)
    except MixedGeneration as exc:
        assert exc.total == len(generations.SYMBOLS) and exc.foreign
        return generations.REFUSED
    return None if closed is None else closed.meta.ranking_snapshot_id


@pytest.mark.parametrize("case", generations.CASES, ids=lambda case: case.name)
def test_a_meta_whose_rows_mix_generations_is_refused(case: generations.MixCase) -> None:
    fold = TopListFold()
    outcomes = [outcome(fold, key, value) for key, value in case.messages]
    assert [seen for seen in outcomes if seen is not None] == case.at_metas
