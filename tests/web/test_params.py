"""Validation of limit/format and Accept negotiation."""

from __future__ import annotations

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
            "unknown query parameter 'limt'; allowed: limit (1 to 200) and format (json or csv)",
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
