"""StatusBoard: the latest ProducerStatus per provider, from status-topic messages."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.web.factories import NOW, coin, status
from topcoins.schemas.codec import encode
from topcoins.web.errors import InvalidMessage
from topcoins.web.status import StatusBoard


def test_statuses_are_kept_per_provider_and_replaced_on_change() -> None:
    board = StatusBoard()
    empty = board.statuses
    prices = status("coinmarketcap")
    assert board.apply(b"coinmarketcap", encode(prices)) is True
    assert board.statuses is not empty and dict(board.statuses) == {"coinmarketcap": prices}

    before = board.statuses
    ranking = status("cryptocompare", failures=2)
    assert board.apply("cryptocompare", encode(ranking)) is True
    assert board.statuses is not before
    assert dict(board.statuses) == {"coinmarketcap": prices, "cryptocompare": ranking}
    assert dict(before) == {"coinmarketcap": prices}  # a handed-out mapping never changes


def test_a_newer_status_replaces_an_older_one_never_the_reverse() -> None:
    board = StatusBoard()
    newer = status(last_attempt_at=NOW, failures=1)
    older = status(last_attempt_at=NOW - timedelta(seconds=60))
    board.apply(b"coinmarketcap", encode(newer))
    held = board.statuses
    assert board.apply(b"coinmarketcap", encode(older)) is False
    assert board.statuses is held and board.statuses["coinmarketcap"] == newer


def test_a_tombstone_forgets_the_provider() -> None:
    board = StatusBoard()
    board.apply(b"coinmarketcap", encode(status()))
    assert board.apply(b"coinmarketcap", None) is True
    assert dict(board.statuses) == {}
    assert board.apply(b"coinmarketcap", None) is False


def test_a_status_from_the_future_is_refused_and_blocks_nothing() -> None:
    board = StatusBoard(clock=lambda: NOW)
    future = status(last_attempt_at=NOW + timedelta(days=1))
    with pytest.raises(InvalidMessage, match="in the future"):
        board.apply(b"coinmarketcap", encode(future))
    assert board.apply(b"coinmarketcap", encode(status())) is True  # the next real one counts
    skewed = status(last_attempt_at=NOW + timedelta(minutes=4))  # within the clock skew
    assert board.apply(b"coinmarketcap", encode(skewed)) is True


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (None, encode(status()), "without a key"),
        (b"\xff", encode(status()), "not UTF-8"),
        (b"coinmarketcap", b"garbage", "not Avro single-object encoded"),
        (b"BTC", encode(coin("BTC", "Bitcoin", 1, 1.0)), "does not belong on the status topic"),
        (b"cryptocompare", encode(status("coinmarketcap")), "keyed by their provider"),
    ],
)
def test_unusable_messages_raise_and_change_nothing(
    key: bytes | None, value: bytes, message: str
) -> None:
    board = StatusBoard()
    board.apply(b"coinmarketcap", encode(status()))
    held = board.statuses
    with pytest.raises(InvalidMessage, match=message):
        board.apply(key, value)
    assert board.statuses is held
