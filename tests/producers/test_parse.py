"""The strict JSON readers: wrong types reject the answer, out-of-range values one item."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from topcoins.producers import _parse
from topcoins.producers._parse import OutOfRange


@pytest.mark.parametrize(
    "value",
    ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"],
)
def test_a_timestamp_outside_years_1_to_9999_in_utc_is_out_of_range(value):
    with pytest.raises(OutOfRange) as caught:
        _parse.optional_timestamp(value, "last_updated")
    assert caught.value.reason == "timestamp_out_of_range"


def test_the_last_millisecond_of_9999_still_fits():
    moment = _parse.optional_timestamp("9999-12-31T23:59:59.999Z", "last_updated")
    assert moment == datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("1e999", "number_out_of_range"),  # JSON reads it as infinity
        ("-1e999", "number_out_of_range"),
        (str(10**400), "number_out_of_range"),  # beyond any double
    ],
)
def test_a_number_that_is_not_finite_is_out_of_range(body, reason):
    with pytest.raises(OutOfRange) as caught:
        _parse.optional_number(json.loads(body), "quote.USD.price")
    assert caught.value.reason == reason


def test_a_negative_volume_is_out_of_range_a_negative_price_is_not():
    with pytest.raises(OutOfRange) as caught:
        _parse.optional_number(-5.0, "volume", volume=True)
    assert caught.value.reason == "negative_volume"
    assert _parse.optional_number(-5.0, "price") == -5.0  # the join's price rule nulls it


@pytest.mark.parametrize("value", [10**15, 2**63 - 1, -(2**63)])
def test_integers_avro_long_carries_are_kept(value):
    assert _parse.require_int(value, "id") == value


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_integers_beyond_avro_long_are_out_of_range(value):
    with pytest.raises(OutOfRange) as caught:
        _parse.require_int(value, "id")
    assert caught.value.reason == "number_out_of_range"


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf", "1000000000000000"])
def test_numbers_sent_as_strings_are_a_type_error_that_rejects_the_answer(value):
    with pytest.raises(ValueError, match="must be a number") as caught:
        _parse.optional_number(value, "quote.USD.price")
    assert not isinstance(caught.value, OutOfRange)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02T03:04:05.123Z", datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)),
        ("2026-01-02T03:04:05.123456Z", datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)),
        ("2026-01-02T05:04:05.999+02:00", datetime(2026, 1, 2, 3, 4, 5, 999000, tzinfo=UTC)),
        ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_timestamps_become_utc_truncated_to_the_millisecond(text, expected):
    moment = _parse.optional_timestamp(text, "last_updated")
    assert moment == expected
    assert moment.tzinfo is UTC


@pytest.mark.parametrize(("value", "expected"), [(2.5, 2.5), (7, 7.0), (-0.0, 0.0), (None, None)])
def test_numbers_are_floats(value, expected):
    number = _parse.optional_number(value, "quote.USD.price")
    assert number == expected
    assert type(number) is type(expected)


def test_a_timestamp_sent_as_a_number_rejects_the_answer():
    with pytest.raises(ValueError, match="must be a string") as caught:
        _parse.optional_timestamp(10**15, "last_updated")
    assert not isinstance(caught.value, OutOfRange)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("X" * (_parse.MAX_SYMBOL_CHARS + 1), "symbol_too_long"),
        ("BT\nC", "symbol_invalid"),
        ("=HYPERLINK(1)", "symbol_invalid"),
        ("+1", "symbol_invalid"),
        ("-1", "symbol_invalid"),
        ("@SUM(A1)", "symbol_invalid"),
        ("\tBTC", "symbol_invalid"),
        ("\rBTC", "symbol_invalid"),
    ],
)
def test_symbols_are_bounded_printable_and_never_formula_like(value, reason):
    with pytest.raises(OutOfRange) as caught:
        _parse.require_symbol(value, "symbol")
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "value", ["BTC", "HOT*", "1000SATS", "weETH", "X" * _parse.MAX_SYMBOL_CHARS]
)
def test_real_symbols_pass(value):
    assert _parse.require_symbol(value, "symbol") == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [("N" * (_parse.MAX_NAME_CHARS + 1), "name_too_long"), ("Bit\x00coin", "name_invalid")],
)
def test_names_are_bounded_and_printable(value, reason):
    with pytest.raises(OutOfRange) as caught:
        _parse.require_name(value, "name")
    assert caught.value.reason == reason
    assert _parse.require_name("Wrapped Bitcoin (WBTC)", "name") == "Wrapped Bitcoin (WBTC)"
