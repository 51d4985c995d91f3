"""Turns records into Avro single-object-encoded bytes and back.

Wire format (Avro specification, "Single object encoding"): the two marker bytes
``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
Parsing Canonical Form, then the Avro binary body. A consumer needs nothing but the
``.avsc`` files in ``published/`` to decode a message.

Each record type is written with the schema version ``versions.CURRENT`` binds it to.
Bodies are written and read with fastavro (compiled); the avro package parses the
``.avsc`` files for the fingerprints and the compatibility check. The bytes are the same
as the avro package writes (``tests/schemas/test_codec_identity.py``).
"""

from __future__ import annotations

import dataclasses
import io
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from operator import attrgetter
from typing import Any, TypeVar, get_args, get_origin

import avro.schema
import fastavro
import fastavro.schema

from topcoins.schemas import versions
from topcoins.schemas.binding import optional_inner
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
    "EncodeError",
    "Record",
    "decode",
    "decode_as",
    "encode",
    "fingerprint_of",
]

MAGIC = b"\xc3\x01"

Record = PriceSnapshot | RankingSnapshot | TopCoin | TopListMeta | ProducerStatus
R = TypeVar("R", PriceSnapshot, RankingSnapshot, TopCoin, TopListMeta, ProducerStatus)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_Convert = Callable[[Any], Any]


class DecodeError(ValueError):
    """Bytes that are not a valid single-object-encoded topcoins record."""


class EncodeError(ValueError):
    """A record that does not fit its Avro schema (nothing is encoded)."""


def fingerprint_of(schema: avro.schema.Schema) -> bytes:
    """The 8-byte little-endian CRC-64-AVRO fingerprint used in the single-object header."""
    return bytes(schema.fingerprint("CRC-64-AVRO"))


@dataclasses.dataclass(frozen=True)
class _Binding:
    record_type: type
    header: bytes
    schema: dict[str, Any]  # the current schema, parsed by fastavro
    writer_schema: dict[str, Any]  # the schema the fingerprint names
    to_avro: _Convert
    from_avro: _Convert

    def read(self, data: bytes) -> Any:
        buffer = io.BytesIO(data)
        buffer.seek(10)
        reader_schema = None if self.writer_schema is self.schema else self.schema
        datum = fastavro.schemaless_reader(buffer, self.writer_schema, reader_schema)
        if buffer.tell() != len(data):
            raise DecodeError(f"{len(data) - buffer.tell()} bytes after the record")
        return datum


def _parse(schema: avro.schema.Schema) -> dict[str, Any]:
    return fastavro.parse_schema(schema.to_json())


def _specification_fingerprint(parsed: dict[str, Any]) -> bytes:
    """The fingerprint as the specification (and Java, fastavro) compute it.

    The avro package keeps ``{"type":"long"}`` for a logical ``long`` in the canonical
    form, so its fingerprint, the one we write, differs for schemas with timestamps.
    """
    canonical = fastavro.schema.to_parsing_canonical_form(parsed)
    return bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))


@cache
def _bindings() -> tuple[dict[type, _Binding], dict[bytes, _Binding]]:
    by_type: dict[type, _Binding] = {}
    by_fingerprint: dict[bytes, _Binding] = {}
    by_fullname: dict[str, _Binding] = {}
    for record_type in versions.CURRENT:
        schema = versions.current_schema(record_type)
        parsed = _parse(schema)
        binding = _Binding(
            record_type,
            MAGIC + fingerprint_of(schema),
            parsed,
            parsed,
            _record_encoder(record_type),
            _record_decoder(record_type),
        )
        by_type[record_type] = binding
        by_fingerprint[binding.header[2:]] = binding
        by_fullname[schema.fullname] = binding
    # Messages written with another published version are resolved to the current schema.
    for _, writer in versions.published_schemas():
        current = by_fullname.get(writer.fullname)
        fingerprint = fingerprint_of(writer)
        if current is None or fingerprint in by_fingerprint:
            continue
        by_fingerprint[fingerprint] = dataclasses.replace(current, writer_schema=_parse(writer))
    # Writers that follow the specification to the letter name the same schemas too.
    for binding in list(by_fingerprint.values()):
        by_fingerprint.setdefault(_specification_fingerprint(binding.writer_schema), binding)
    return by_type, by_fingerprint


def encode(record: Record) -> bytes:
    """Encode a record as Avro single-object bytes; ``EncodeError`` if it does not fit."""
    binding = _bindings()[0].get(type(record))
    if binding is None:
        raise TypeError(f"not a topcoins record: {type(record).__name__}")
    try:
        datum = binding.to_avro(record)
        buffer = io.BytesIO()
        buffer.write(binding.header)
        fastavro.schemaless_writer(
            buffer, binding.schema, datum, strict=True, disable_tuple_notation=True
        )
    except EncodeError:
        raise
    except (ValueError, TypeError, OverflowError, AttributeError, KeyError) as exc:
        raise EncodeError(f"cannot encode {type(record).__name__}: {exc}") from exc
    return buffer.getvalue()


def decode(data: bytes | None) -> Record:
    """Decode single-object bytes into the record type named by their fingerprint.

    Anything that is not such a record, whatever is wrong with it, raises ``DecodeError``.
    """
    if not data or len(data) < 10 or data[:2] != MAGIC:
        raise DecodeError("not Avro single-object encoded (missing C3 01 marker)")
    binding = _bindings()[1].get(bytes(data[2:10]))
    if binding is None:
        raise DecodeError(f"unknown schema fingerprint {bytes(data[2:10]).hex()}")
    try:
        return binding.from_avro(binding.read(data))
    except DecodeError as exc:
        raise DecodeError(f"cannot decode {binding.record_type.__name__}: {exc}") from exc
    # Untrusted bytes: whatever fastavro or a record constructor raises on them (EOFError,
    # OverflowError for a timestamp past year 9999, IndexError for a bad union branch, ...)
    # means the same thing to a caller.
    except Exception as exc:
        raise DecodeError(
            f"cannot decode {binding.record_type.__name__}: {type(exc).__name__}: {exc}"
        ) from exc


def decode_as(record_type: type[R], data: bytes | None) -> R:
    """Decode and check that the bytes hold a ``record_type``."""
    record = decode(data)
    if not isinstance(record, record_type):
        raise DecodeError(f"expected {record_type.__name__}, got {type(record).__name__}")
    return record


@cache
def _hints(record_type: type) -> dict[str, Any]:
    return typing.get_type_hints(record_type)


def _to_millis(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise EncodeError(f"naive datetime {moment!r}: topcoins timestamps must be UTC-aware")
    return (moment - _EPOCH) // _MILLISECOND  # floor, as the avro package does


@dataclasses.dataclass(frozen=True)
class _Direction:
    """How one direction (record to datum, or datum to record) converts each kind of value."""

    leaves: Mapping[Any, _Convert]  # the field types whose values are converted
    sequence: Callable[[Iterable[Any]], Any]  # what an array becomes
    record: Callable[[type], _Convert]


def _converter(annotation: Any, direction: _Direction) -> _Convert | None:
    """None when a value of ``annotation`` needs no conversion (the common case, kept free
    of calls)."""
    if (inner := optional_inner(annotation)) is not None:
        item = _converter(inner, direction)
        return None if item is None else lambda value: None if value is None else item(value)
    if get_origin(annotation) is tuple:
        item = _converter(get_args(annotation)[0], direction)
        sequence = direction.sequence
        return sequence if item is None else lambda value: sequence(map(item, value))
    if dataclasses.is_dataclass(annotation):
        return direction.record(annotation)
    return direction.leaves.get(annotation)


def _record_encoder(record_type: type) -> _Convert:
    hints = _hints(record_type)
    names = [field.name for field in dataclasses.fields(record_type)]
    plain = [name for name in names if _converter(hints[name], _TO_AVRO) is None]
    converted = [(name, _converter(hints[name], _TO_AVRO)) for name in names if name not in plain]
    get_plain = attrgetter(*plain) if len(plain) > 1 else None
    # fastavro writes 2.5 into a long as 2 and "1.5" into a double as 1.5 (its validator
    # would refuse them, but costs more than the write): numbers are checked here.
    numbers = [(name, allowed) for name in plain if (allowed := _numeric(hints[name]))]

    def to_avro(record: Any) -> dict[str, Any]:
        if get_plain is not None:
            datum = dict(zip(plain, get_plain(record), strict=True))
        else:
            datum = {name: getattr(record, name) for name in plain}
        for name, allowed in numbers:
            if not isinstance(datum[name], allowed):
                raise EncodeError(f"{record_type.__name__}.{name} is {datum[name]!r}: not a number")
        for name, convert in converted:
            datum[name] = convert(getattr(record, name))
        return datum

    return to_avro


def _numeric(annotation: Any) -> tuple[type, ...] | None:
    """The Python types an ``int`` or ``float`` field accepts (None: not a number field)."""
    inner = optional_inner(annotation)
    allowed = {int: (int,), float: (int, float)}.get(inner if inner is not None else annotation)
    if allowed is None:
        return None
    return (*allowed, type(None)) if inner is not None else allowed


def _from_timestamp(value: Any) -> datetime:
    if not isinstance(value, datetime):  # a long without the logical type
        return _EPOCH + value * _MILLISECOND
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _record_decoder(record_type: type) -> _Convert:
    hints = _hints(record_type)
    fields = [
        (field.name, _converter(hints[field.name], _FROM_AVRO))
        for field in dataclasses.fields(record_type)
    ]

    def from_avro(datum: dict[str, Any]) -> Any:
        return record_type(
            *[datum[name] if convert is None else convert(datum[name]) for name, convert in fields]
        )

    return from_avro


_TO_AVRO = _Direction({datetime: _to_millis}, list, _record_encoder)
# A float field also reads an Avro long promoted to double by schema resolution.
_FROM_AVRO = _Direction({datetime: _from_timestamp, float: float}, tuple, _record_decoder)
