"""The fastavro codec writes the very bytes the avro package writes, for every record type.

Records are generated from the dataclasses' type hints, so a field added to a record (and
its schema) is covered without touching this file; an unknown field type fails loudly.
"""

import dataclasses
import io
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Union, get_args, get_origin

import avro.io
import avro.schema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topcoins.schemas import codec, versions

RECORD_TYPES = list(versions.CURRENT)
ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]


def avro_datum(value: Any) -> Any:
    """The datum the avro package writes: dicts, lists, aware datetimes as they are."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: avro_datum(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [avro_datum(item) for item in value]
    return value


def avro_package_bytes(record: Any) -> bytes:
    """``record`` single-object encoded by the avro package alone."""
    schema = versions.current_schema(type(record))
    buffer = io.BytesIO()
    buffer.write(codec.MAGIC + codec.fingerprint_of(schema))
    avro.io.DatumWriter(schema).write(avro_datum(record), avro.io.BinaryEncoder(buffer))
    return buffer.getvalue()


def values(annotation: Any, *, exact: bool) -> st.SearchStrategy[Any]:
    """Values of ``annotation`` that fit its Avro type; ``exact``: ones that read back equal."""
    if get_origin(annotation) in (Union, types.UnionType):
        (inner,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        return st.none() | values(inner, exact=exact)
    if get_origin(annotation) is tuple:
        return st.lists(values(get_args(annotation)[0], exact=exact), max_size=4).map(tuple)
    if dataclasses.is_dataclass(annotation):
        hints = typing.get_type_hints(annotation)
        fields = {
            f.name: values(hints[f.name], exact=exact) for f in dataclasses.fields(annotation)
        }
        return st.builds(annotation, **fields)
    if annotation is int:
        return st.integers(-(2**63), 2**63 - 1)
    if annotation is float:
        return st.floats(allow_nan=not exact)
    if annotation is str:
        return st.text(st.characters(codec="utf-8"), max_size=12)
    if annotation is datetime:
        moments = st.datetimes(
            datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.sampled_from(ZONES)
        )
        if exact:  # the wire keeps milliseconds
            return moments.map(lambda m: m.replace(microsecond=m.microsecond // 1000 * 1000))
        return moments
    raise TypeError(f"no strategy for record field type {annotation!r}: add one here")


@pytest.mark.parametrize("record_type", RECORD_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_fastavro_bytes_are_the_avro_package_bytes(record_type, data):
    record = data.draw(values(record_type, exact=False))
    assert codec.encode(record) == avro_package_bytes(record)


@pytest.mark.parametrize("record_type", RECORD_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_decode_reads_back_what_encode_wrote(record_type, data):
    record = data.draw(values(record_type, exact=True))
    decoded = codec.decode(codec.encode(record))
    assert decoded == record
    assert type(decoded) is record_type
    assert all(moment.tzinfo is UTC for moment in datetimes_in(decoded))


def datetimes_in(value: Any) -> list[datetime]:
    if dataclasses.is_dataclass(value):
        return [m for f in dataclasses.fields(value) for m in datetimes_in(getattr(value, f.name))]
    if isinstance(value, tuple):
        return [m for item in value for m in datetimes_in(item)]
    return [value] if isinstance(value, datetime) else []


def test_every_record_type_has_a_strategy_and_a_schema():
    assert set(RECORD_TYPES) == set(typing.get_args(codec.Record))


def older_published_versions() -> list[tuple[str, Any, type]]:
    """(file name, schema, record type) of every published version other than the current."""
    current = {versions.current_schema(t).fullname: t for t in versions.CURRENT}
    older = []
    for name, schema in versions.published_schemas():
        record_type = current[schema.fullname]
        now = versions.current_schema(record_type)
        if codec.fingerprint_of(schema) != codec.fingerprint_of(now):
            older.append((name, schema, record_type))
    return older


@pytest.mark.parametrize(
    ("name", "schema", "record_type"), older_published_versions(), ids=lambda v: str(v)[:30]
)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_messages_of_every_older_published_version_decode(name, schema, record_type, data):
    record = data.draw(values(record_type, exact=True))
    datum, expected = as_written_by(schema, record)
    buffer = io.BytesIO(codec.MAGIC + codec.fingerprint_of(schema))
    buffer.seek(10)
    avro.io.DatumWriter(schema).write(datum, avro.io.BinaryEncoder(buffer))
    assert codec.decode(buffer.getvalue()) == expected


def as_written_by(schema: Any, value: Any) -> tuple[Any, Any]:
    """The datum an older ``schema`` writes for ``value`` (nested records too), and the value
    it reads back as now: each field the old schema lacks at its dataclass default."""
    if value is None:
        return None, None
    if isinstance(schema, avro.schema.UnionSchema):
        (inner,) = [branch for branch in schema.schemas if branch.type != "null"]
        return as_written_by(inner, value)
    if isinstance(schema, avro.schema.ArraySchema):
        pairs = [as_written_by(schema.items, item) for item in value]
        return [datum for datum, _ in pairs], tuple(read for _, read in pairs)
    if isinstance(schema, avro.schema.RecordSchema):
        old = {field.name: field.type for field in schema.fields}
        datum, read = {}, {}
        for field in dataclasses.fields(value):
            if field.name in old:
                datum[field.name], read[field.name] = as_written_by(
                    old[field.name], getattr(value, field.name)
                )
            else:
                read[field.name] = field.default
        return datum, type(value)(**read)
    return avro_datum(value), value
