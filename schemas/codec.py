"""Turns records into Avro single-object-encoded bytes and back.

Wire format (Avro specification, "Single object encoding"): the two marker bytes
``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
Parsing Canonical Form, then the Avro binary body. A consumer needs nothing but the
``.avsc`` files in this folder to decode a message.
"""

from __future__ import annotations

import dataclasses
import io
import json
import types
import typing
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, TypeVar, Union, get_args, get_origin

import avro.errors
import avro.io
import avro.schema

from topcoins.schemas.records import (
    PriceSnapshot,
    ProducerStatus,
    RankingSnapshot,
    TopCoin,
    TopListMeta,
)

__all__ = [
    "MAGIC",
    "DecodeError",
    "Record",
    "decode",
    "decode_as",
    "encode",
    "fingerprint_of",
    "load_schema",
    "published_schemas",
]

MAGIC = b"\xc3\x01"

Record = PriceSnapshot | RankingSnapshot | TopCoin | TopListMeta | ProducerStatus
R = TypeVar("R", PriceSnapshot, RankingSnapshot, TopCoin, TopListMeta, ProducerStatus)

SCHEMA_FILES: dict[type, str] = {
    PriceSnapshot: "price_snapshot.avsc",
    RankingSnapshot: "ranking_snapshot.avsc",
    TopCoin: "top_coin.avsc",
    TopListMeta: "top_list_meta.avsc",
    ProducerStatus: "producer_status.avsc",
}


class DecodeError(ValueError):
    """Bytes that are not a valid single-object-encoded topcoins record."""


@cache
def load_schema(filename: str) -> avro.schema.Schema:
    """Parse one ``.avsc`` file shipped in this package."""
    text = resources.files("topcoins.schemas").joinpath(filename).read_text(encoding="utf-8")
    return avro.schema.parse(text)


def fingerprint_of(schema: avro.schema.Schema) -> bytes:
    """The 8-byte little-endian CRC-64-AVRO fingerprint used in the single-object header."""
    return bytes(schema.fingerprint("CRC-64-AVRO"))


@dataclasses.dataclass(frozen=True)
class _Binding:
    record_type: type
    schema: avro.schema.Schema
    header: bytes
    writer: avro.io.DatumWriter
    reader: avro.io.DatumReader


def published_schemas() -> list[tuple[str, avro.schema.Schema]]:
    """Every schema version ever published (``published/<name>.v<N>.avsc``), oldest first."""
    folder = resources.files("topcoins.schemas").joinpath("published")
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".avsc"))
    return [(name, load_schema(f"published/{name}")) for name in names]


@cache
def _bindings() -> tuple[dict[type, _Binding], dict[bytes, _Binding]]:
    by_type: dict[type, _Binding] = {}
    by_fingerprint: dict[bytes, _Binding] = {}
    by_fullname: dict[str, _Binding] = {}
    for record_type, filename in SCHEMA_FILES.items():
        schema = load_schema(filename)
        header = MAGIC + fingerprint_of(schema)
        binding = _Binding(
            record_type, schema, header, avro.io.DatumWriter(schema), avro.io.DatumReader(schema)
        )
        by_type[record_type] = binding
        by_fingerprint[header[2:]] = binding
        by_fullname[schema.fullname] = binding
    # Messages written with an older published version are resolved to the current schema.
    for _, writer_schema in published_schemas():
        current = by_fullname.get(writer_schema.fullname)
        fingerprint = fingerprint_of(writer_schema)
        if current is None or fingerprint in by_fingerprint:
            continue
        by_fingerprint[fingerprint] = dataclasses.replace(
            current, reader=avro.io.DatumReader(writer_schema, current.schema)
        )
    return by_type, by_fingerprint


def encode(record: Record) -> bytes:
    """Encode a record as Avro single-object bytes."""
    binding = _bindings()[0][type(record)]
    buffer = io.BytesIO()
    buffer.write(binding.header)
    binding.writer.write(_to_avro(record), avro.io.BinaryEncoder(buffer))
    return buffer.getvalue()


def decode(data: bytes | None) -> Record:
    """Decode single-object bytes into the record type named by their fingerprint."""
    if not data or len(data) < 10 or data[:2] != MAGIC:
        raise DecodeError("not Avro single-object encoded (missing C3 01 marker)")
    binding = _bindings()[1].get(bytes(data[2:10]))
    if binding is None:
        raise DecodeError(f"unknown schema fingerprint {bytes(data[2:10]).hex()}")
    try:
        datum = binding.reader.read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
        return _from_avro(binding.record_type, datum)
    except (avro.errors.AvroException, EOFError, UnicodeDecodeError, TypeError, ValueError) as exc:
        raise DecodeError(f"cannot decode {binding.record_type.__name__}: {exc}") from exc


def decode_as(record_type: type[R], data: bytes | None) -> R:
    """Decode and check that the bytes hold a ``record_type``."""
    record = decode(data)
    if not isinstance(record, record_type):
        raise DecodeError(f"expected {record_type.__name__}, got {type(record).__name__}")
    return record


def _to_avro(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_avro(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: topcoins timestamps must be UTC-aware")
        return value  # the avro library encodes aware datetimes as timestamp-millis
    if isinstance(value, tuple | list):
        return [_to_avro(item) for item in value]
    return value


@cache
def _hints(record_type: type) -> dict[str, Any]:
    return typing.get_type_hints(record_type)


def _from_avro(annotation: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        inner = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _from_avro(inner[0], value)
    if origin is tuple:
        item_type = get_args(annotation)[0]
        return tuple(_from_avro(item_type, item) for item in value)
    if dataclasses.is_dataclass(annotation):
        hints = _hints(annotation)
        return annotation(**{name: _from_avro(hints[name], value[name]) for name in hints})
    if annotation is datetime:
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return datetime.fromtimestamp(value / 1000, UTC)
    if annotation is float and isinstance(value, int):
        return float(value)
    return value


def schema_json(record_type: type) -> dict[str, Any]:
    """The schema of a record type as a JSON object (for docs and compatibility checks)."""
    return json.loads(str(load_schema(SCHEMA_FILES[record_type])))
