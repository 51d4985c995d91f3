"""Hand-written Avro single-object bytes for fault tests, independent of how the codec
decodes.

``out_of_range(kind)`` is a record that is valid Avro for the real schema (marker
``C3 01``, the fingerprint the codec writes, a hand-encoded binary body) but whose
``timestamp-millis`` is ``FAR_FUTURE_MS`` (10^15 ms, about the year 33658), outside
Python's ``datetime`` range: a consumer cannot turn it into a record, whatever exception
its Avro library raises for it.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime

from topcoins.schemas.codec import MAGIC, encode
from topcoins.schemas.records import (
    PriceSnapshot,
    ProducerStatus,
    RankingSnapshot,
    TopCoin,
    TopListMeta,
)

__all__ = ["FAR_FUTURE_MS", "KINDS", "fingerprint", "out_of_range", "unknown_fingerprint"]

FAR_FUTURE_MS = 10**15
KINDS = ("ranking", "prices", "top_coin", "top_list_meta", "status")
_T = datetime(2024, 5, 1, tzinfo=UTC)
_SAMPLES = {
    "ranking": RankingSnapshot("r", _T, 1, None, ()),
    "prices": PriceSnapshot("p", _T, None, ()),
    "top_coin": TopCoin(1, "X", "X", None, None, "unmatched", None, _T, None, "r", None),
    "top_list_meta": TopListMeta((), "r", _T, None, None, None, 0, 0),
    "status": ProducerStatus("x", "pricing", 60.0, _T, None, None, None, None, None, 0),
}


def fingerprint(kind: str) -> bytes:
    """The fingerprint the codec writes for ``kind`` today (bytes 2-10 of a real message)."""
    return encode(_SAMPLES[kind])[2:10]


def _long(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _string(text: str) -> bytes:
    data = text.encode()
    return _long(len(data)) + data


_NULL = _long(0)  # union branch 0: "null"
_EMPTY_ARRAY = _long(0)


def _body(kind: str, millis: int, key: str, text: str) -> bytes:
    if kind in ("ranking", "prices"):
        # snapshot_id, fetched_at, (depth,) nullable total, empty list of assets/quotes
        depth = _long(1) if kind == "ranking" else b""
        return _string(text) + _long(millis) + depth + _NULL + _EMPTY_ARRAY
    if kind == "top_coin":
        # rank, symbol, name, cmc_id, price, match_rule, volume, rank_fetched_at,
        # price_fetched_at, ranking_snapshot_id, pricing_snapshot_id
        return (
            _long(1) + _string(key) + _string(text) + _NULL + _NULL + _string("unmatched")
            + _NULL + _long(millis) + _NULL + _string("bad") + _NULL
        )  # fmt: skip
    if kind == "top_list_meta":
        # symbols, ranking_snapshot_id, ranking_fetched_at, pricing id, prices time, total,
        # depth, unmatched
        return (
            _EMPTY_ARRAY + _string(text) + _long(millis) + _NULL + _NULL + _NULL
            + _long(0) + _long(0)
        )  # fmt: skip
    if kind == "status":
        # provider, component, poll_interval_seconds, last_attempt_at, 5 nullable fields,
        # consecutive_failures
        return (
            _string(key) + _string(text) + struct.pack("<d", 60.0) + _long(millis)
            + _NULL * 5 + _long(0)
        )  # fmt: skip
    raise ValueError(f"unknown kind {kind!r}; one of {KINDS}")


def out_of_range(
    kind: str, key: str = "BAD", millis: int = FAR_FUTURE_MS, text: str = "bad"
) -> bytes:
    """A ``kind`` record, valid Avro, whose timestamp is ``millis`` (out of range by default).

    ``key`` is its provider or symbol; ``text`` fills one free-text field (the snapshot id,
    the name, the component): pass a long one for a large message."""
    return MAGIC + fingerprint(kind) + _body(kind, millis, key, text)


def unknown_fingerprint(kind: str, key: str = "BAD") -> bytes:
    """A well-formed body behind a fingerprint no schema has."""
    return MAGIC + bytes(8) + _body(kind, 1_700_000_000_000, key, "bad")
