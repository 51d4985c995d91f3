"""The one number text, ISO time text and typed-in time rule (the web's ``at`` rules in
detail: tests/web/test_params.py)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from topcoins.formats import format_number, iso_utc, parse_moment


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (67012.34, "67012.34"),
        (1.0, "1.0"),
        (100.0, "100.0"),
        (0.1, "0.1"),
        (0.00001234, "0.00001234"),
        (1.5e-10, "0.00000000015"),
        (1e16, "10000000000000000.0"),
        (1.2345e21, "1234500000000000000000.0"),
        (333333333.3333333, "333333333.3333333"),
        (-2.5, "-2.5"),
    ],
)
def test_numbers_are_shortest_round_trip_and_positional(value: float, text: str) -> None:
    assert format_number(value) == text
    assert float(text) == value
    assert "e" not in text.lower()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="no JSON or CSV number form"):
        format_number(value)


def test_timestamps_are_utc_with_milliseconds_and_z() -> None:
    moment = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert iso_utc(moment) == "2024-05-01T12:00:00.123Z"
    assert iso_utc(datetime(2024, 5, 1, tzinfo=UTC)) == "2024-05-01T00:00:00.000Z"
    assert iso_utc(None) is None


def test_timestamps_can_stop_at_the_second() -> None:
    moment = datetime(2024, 5, 1, 14, 0, 0, 999000, tzinfo=timezone(timedelta(hours=2)))
    assert iso_utc(moment, "seconds") == "2024-05-01T12:00:00Z"


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-11-27T12:00:00Z", datetime(2026, 11, 27, 12, tzinfo=UTC)),
        ("2026-11-27t13:00+01:00", datetime(2026, 11, 27, 12, tzinfo=UTC)),
        ("2026-11-27 11:00:00.1239-01:00", datetime(2026, 11, 27, 12, 0, 0, 123000, UTC)),
        ("2026-11-27T13:00:00 01:00", datetime(2026, 11, 27, 12, tzinfo=UTC)),  # "+" as " "
    ],
)
def test_a_time_with_an_offset_is_a_utc_moment_in_milliseconds(text: str, moment: datetime) -> None:
    assert parse_moment(text, "--at") == moment


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        (
            "2026-11-27T12:00:00",
            "--since '2026-11-27T12:00:00' has no UTC offset: add Z for "
            "UTC or the offset it was meant in (+01:00)",
        ),
        ("2026-11-27", "--since must be an ISO 8601 date and time with a UTC offset"),
        (" 2026-11-27T12:00:00Z", "--since must be an ISO 8601 date and time"),
        ("2026-11-27T12:00:00+24:00", "--since '2026-11-27T12:00:00+24:00' has an offset"),
        ("2026-02-30T12:00:00Z", "--since '2026-02-30T12:00:00Z' is not a valid time"),
        ("1969-12-31T23:59:59Z", "--since must be 1970-01-01T00:00:00Z or later"),
    ],
)
def test_anything_else_is_refused_with_the_name_of_what_was_given(text: str, detail: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_moment(text, "--since")
    assert str(info.value).startswith(detail)
