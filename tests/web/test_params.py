"""Validation of limit/format/at and Accept negotiation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topcoins.web.errors import InvalidParameter
from topcoins.web.params import Format, QueryParser, TopListQuery, negotiate


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", TopListQuery(200, None)),
        (b"limit=1", TopListQuery(1, None)),
        (b"limit=200", TopListQuery(200, None)),
        (b"limit=007", TopListQuery(7, None)),
        (b"format=json", TopListQuery(200, Format.JSON)),
        (b"format=csv&limit=3", TopListQuery(3, Format.CSV)),
        (b"format=CSV", TopListQuery(200, Format.CSV)),
        (b"limit=5&", TopListQuery(5, None)),
    ],
)
def test_valid_queries(query: bytes, expected: TopListQuery) -> None:
    assert QueryParser(200).parse(query) == expected


@pytest.mark.parametrize(
    ("query", "code", "detail"),
    [
        (b"limit=0", "invalid_limit", "limit must be an integer from 1 to 200, got '0'"),
        (b"limit=201", "invalid_limit", "limit must be an integer from 1 to 200, got '201'"),
        (b"limit=-1", "invalid_limit", "limit must be an integer from 1 to 200, got '-1'"),
        (b"limit=abc", "invalid_limit", "limit must be an integer from 1 to 200, got 'abc'"),
        (b"limit=1.5", "invalid_limit", "limit must be an integer from 1 to 200, got '1.5'"),
        (b"limit=", "invalid_limit", "limit must be an integer from 1 to 200, got ''"),
        (b"limit", "invalid_limit", "limit must be an integer from 1 to 200, got ''"),
        (b"limit=%2B5", "invalid_limit", "got '+5'"),
        (b"limit=+5", "invalid_limit", "got ' 5'"),  # '+' is a space in a query
        (b"limit=%205", "invalid_limit", "got ' 5'"),
        (b"limit=%D9%A3", "invalid_limit", "got '\u0663'"),  # Arabic-Indic digit three
        (b"limit=99999999999999999999", "invalid_limit", "from 1 to 200"),
        (
            b"limit=5&limit=6",
            "invalid_limit",
            "limit was given 2 times; give it once (limit must be an integer from 1 to 200)",
        ),
        (b"format=xml", "invalid_format", "format must be 'json' or 'csv', got 'xml'"),
        (b"format=", "invalid_format", "format must be 'json' or 'csv', got ''"),
        (b"format=csv&format=json", "invalid_format", "format was given 2 times"),
        (
            b"limt=5",
            "unknown_parameter",
            "unknown query parameter 'limt'; allowed: limit (1 to 200), format (json or csv) "
            "and at (an ISO 8601 time with an offset)",
        ),
        (b"a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9", "invalid_query", "too many parameters"),
    ],
)
def test_invalid_queries_say_what_is_wrong_and_allowed(
    query: bytes, code: str, detail: str
) -> None:
    with pytest.raises(InvalidParameter) as info:
        QueryParser(200).parse(query)
    assert info.value.code == code
    assert detail in info.value.detail
    assert info.value.status_code == 400


UTC_NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"at=2026-11-27T12:00:00Z", UTC_NOON),
        (b"at=2026-11-27T12:00:00z", UTC_NOON),
        (b"at=2026-11-27t12:00:00Z", UTC_NOON),
        (b"at=2026-11-27T12:00Z", UTC_NOON),
        (b"at=2026-11-27T12:00:00%2B00:00", UTC_NOON),
        (b"at=2026-11-27T12:00:00-00:00", UTC_NOON),
        (b"at=2026-11-27T13:00:00%2B01:00", UTC_NOON),
        (b"at=2026-11-27T13:00:00+01:00", UTC_NOON),  # unencoded "+": decoded to a space
        (b"at=2026-11-27T06:30:00-05:30", UTC_NOON),
        (b"at=2026-11-28T11:59:00%2B23:59", UTC_NOON),
        (b"at=2026-11-27%2012:00:00Z", UTC_NOON),
        (b"at=2026-11-27+12:00:00Z", UTC_NOON),
        (b"at=2026-11-27T12%3A00%3A00Z", UTC_NOON),
        (b"at=2026-11-27T12:00:00.5Z", UTC_NOON + timedelta(milliseconds=500)),
        (b"at=2026-11-27T13:00:00.123%2B01:00", UTC_NOON + timedelta(milliseconds=123)),
        # Kafka timestamps are milliseconds: anything finer is dropped, never rounded up.
        (b"at=2026-11-27T12:00:00.123999Z", UTC_NOON + timedelta(milliseconds=123)),
        (b"at=2026-11-27T12:00:00.999999999Z", UTC_NOON + timedelta(milliseconds=999)),
        (b"at=1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
        (b"at=1970-01-01T01:00:00%2B01:00", datetime(1970, 1, 1, tzinfo=UTC)),
        (b"at=2024-02-29T00:00:00Z", datetime(2024, 2, 29, tzinfo=UTC)),
        (b"at=9999-12-31T23:59:59Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_valid_at_values(query: bytes, expected: datetime) -> None:
    parsed = QueryParser(200).parse(query)
    assert parsed == TopListQuery(200, None, expected)
    assert parsed.at is not None and parsed.at.tzinfo is UTC


def test_at_combines_with_limit_and_format() -> None:
    parsed = QueryParser(200).parse(b"limit=3&at=2026-11-27T12:00:00Z&format=csv")
    assert parsed == TopListQuery(3, Format.CSV, UTC_NOON)


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (b"", "at must be an ISO 8601 date and time with a UTC offset"),
        (b"now", "such as 2026-11-27T12:00:00Z or 2026-11-27T13:00:00.123+01:00; got 'now'"),
        (b"1764244800", "got '1764244800'"),
        (b"2026-11-27", "got '2026-11-27'"),
        (b"2026-11-27T12", "got '2026-11-27T12'"),
        (b"20261127T120000Z", "got '20261127T120000Z'"),
        (b"2026-W48-5T12:00:00Z", "got '2026-W48-5T12:00:00Z'"),
        (b"2026-11-27T12:00:00,5Z", "got '2026-11-27T12:00:00,5Z'"),
        (b"2026-11-27T12:00:00.Z", "got '2026-11-27T12:00:00.Z'"),
        (b"2026-11-27T12:00:00.1234567890Z", "got '2026-11-27T12:00:00.1234567890Z'"),
        (b"2026-11-27T12:00:00%2B01", "got '2026-11-27T12:00:00+01'"),
        (b"2026-11-27T12:00:00%2B0100", "got '2026-11-27T12:00:00+0100'"),
        (b"2026-11-27T12:00:00 Z", "got '2026-11-27T12:00:00 Z'"),
        (b"2026-11-27T12:00:00ZZ", "got '2026-11-27T12:00:00ZZ'"),
        (b"%EF%BC%92026-11-27T12:00:00Z", "got '\uff12026-11-27T12:00:00Z'"),  # fullwidth 2
        (
            b"2026-11-27T12:00:00",
            "at '2026-11-27T12:00:00' has no UTC offset: add Z for UTC or the offset it was "
            "meant in (+01:00, written %2B01:00 in a URL)",
        ),
        (b"2026-11-27T12:00", "has no UTC offset"),
        (b"2026-11-27T12:00:00%2B24:00", "has an offset outside -23:59 to +23:59"),
        (b"2026-11-27T12:00:00-01:60", "has an offset outside -23:59 to +23:59"),
        (b"2026-02-29T12:00:00Z", "is not a valid time: day is out of range for month"),
        (b"2026-13-01T12:00:00Z", "is not a valid time"),
        (b"2026-11-27T24:00:00Z", "is not a valid time"),
        (b"2026-11-27T12:60:00Z", "is not a valid time"),
        (b"2026-11-27T12:00:60Z", "is not a valid time"),  # no leap seconds
        (b"0000-01-01T00:00:00Z", "is not a valid time"),
        (b"0001-01-01T00:00:00%2B01:00", "is not a valid time"),  # before year 1 in UTC
        (b"9999-12-31T23:59:59-01:00", "is not a valid time"),  # after year 9999 in UTC
        (b"1969-12-31T23:59:59.999Z", "at must be 1970-01-01T00:00:00Z or later"),
        (b"1970-01-01T00:30:00%2B01:00", "at must be 1970-01-01T00:00:00Z or later"),
    ],
)
def test_invalid_at_values(value: bytes, detail: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        QueryParser(200).parse(b"at=" + value)
    assert info.value.code == "invalid_at"
    assert info.value.status_code == 400
    assert detail in info.value.detail


def test_at_given_twice() -> None:
    with pytest.raises(InvalidParameter, match="at was given 2 times; give it once"):
        QueryParser(200).parse(b"at=2026-11-27T12:00:00Z&at=2026-11-27T12:00:00Z")


# Fixed offsets in whole minutes (what RFC 3339 can write), from -23:59 to +23:59.
OFFSETS = st.integers(-1439, 1439).map(lambda minutes: timezone(timedelta(minutes=minutes)))


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1971, 1, 1), timezones=OFFSETS))
def test_any_aware_time_round_trips_to_the_millisecond(moment: datetime) -> None:
    text = moment.isoformat().replace("+", "%2B").encode()
    try:
        parsed = QueryParser(200).parse(b"at=" + text).at
    except InvalidParameter as exc:  # the offset pushes it past 9999-12-31 in UTC
        assert "is not a valid time" in exc.detail
        assert moment.year == 9999
        return
    assert parsed is not None
    assert parsed <= moment < parsed + timedelta(milliseconds=1)


def test_default_limit_is_200_or_the_depth_if_smaller() -> None:
    assert QueryParser(5000).parse(b"") == TopListQuery(200, None)
    assert QueryParser(50).parse(b"") == TopListQuery(50, None)
    assert QueryParser(5000).parse(b"limit=5000").limit == 5000
    with pytest.raises(InvalidParameter, match="from 1 to 50"):
        QueryParser(50).parse(b"limit=51")


def test_parser_rejects_a_depth_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        QueryParser(0)


def test_parses_are_memoised_and_bounded() -> None:
    parser = QueryParser(200)
    first = parser.parse(b"limit=3")
    assert parser.parse(b"limit=3") is first
    for n in range(1, 201):
        for fmt in ("json", "csv", "JSON", "Csv", "cSv", "jSoN"):
            parser.parse(f"limit={n}&format={fmt}".encode())
    assert len(parser._memo) <= 1024


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, Format.JSON),
        (b"", Format.JSON),
        (b"*/*", Format.JSON),
        (b"application/json", Format.JSON),
        (b"text/csv", Format.CSV),
        (b"TEXT/CSV", Format.CSV),
        (b"text/csv; charset=utf-8", Format.CSV),
        (b"text/*", Format.CSV),
        (b"text/csv, application/json", Format.JSON),
        (b"text/csv, application/json;q=0.9", Format.CSV),
        (b"application/json;q=0.5, text/csv;q=0.8", Format.CSV),
        (b"text/csv;q=0, */*", Format.JSON),
        (b"text/csv, */*;q=0.1", Format.CSV),
        (b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", Format.JSON),
        (b"application/xml", Format.JSON),
        (b"text/csv;q=oops", Format.JSON),
    ],
)
def test_accept_negotiation(accept: bytes | None, expected: Format) -> None:
    assert negotiate(accept) is expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_query_bytes_parse_or_raise_invalid_parameter(query: bytes) -> None:
    try:
        parsed = QueryParser(200).parse(query)
    except InvalidParameter as exc:
        assert exc.status_code == 400 and exc.detail
    else:
        assert 1 <= parsed.limit <= 200


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_accept_bytes_negotiate(accept: bytes) -> None:
    assert negotiate(accept) in (Format.JSON, Format.CSV)


def test_the_stream_parser_takes_limit_only() -> None:
    from topcoins.web.params import STREAM_PARAMETERS

    parser = QueryParser(200, STREAM_PARAMETERS)
    assert parser.parse(b"limit=7") == TopListQuery(limit=7, format=None)
    for query in (b"format=json", b"at=2026-11-27T12:00:00Z"):
        with pytest.raises(InvalidParameter) as refused:
            parser.parse(query)
        assert refused.value.code == "unknown_parameter"
        assert refused.value.detail.endswith("; allowed: limit (1 to 200)")
    with pytest.raises(ValueError):
        QueryParser(200, ("limit", "sort"))
