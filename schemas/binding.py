"""Compares a record dataclass with its Avro schema, field by field.

The schema files are the contract; ``records.py`` declares the same records as typed
dataclasses for the code that builds and reads them. ``binding_problems`` lists every way
the two disagree (record names, field names and order, types, optionality, defaults), so
neither can change without the other.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from typing import Any, Union, get_args, get_origin

import avro.schema

__all__ = ["binding_problems", "optional_inner"]

# Python type -> (Avro type, logical type) of a field that holds it.
_LEAVES: dict[Any, tuple[str, str | None]] = {
    int: ("long", None),
    float: ("double", None),
    str: ("string", None),
    datetime: ("long", "timestamp-millis"),
}


def optional_inner(annotation: Any) -> Any | None:
    """``X`` for an ``X | None`` annotation, None for any other."""
    if get_origin(annotation) in (Union, types.UnionType):
        inner = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported record field type {annotation!r}")
        return inner[0]
    return None


def binding_problems(record_type: type, schema: avro.schema.Schema) -> list[str]:
    """Every difference between ``record_type`` and ``schema``, one readable line each."""
    return _record_problems(record_type.__name__, record_type, schema)


def _record_problems(where: str, record_type: type, schema: avro.schema.Schema) -> list[str]:
    if not isinstance(schema, avro.schema.RecordSchema):
        return [f"{where}: a {record_type.__name__} record in records.py, {schema} in the schema"]
    problems = []
    if schema.name != record_type.__name__:
        problems.append(
            f"{where}: {record_type.__name__} in records.py, {schema.name} in the schema"
        )
    fields = dataclasses.fields(record_type)
    ours = [field.name for field in fields]
    theirs = [field.name for field in schema.fields]
    if ours != theirs:
        return [*problems, f"{where}: fields {ours} in records.py, {theirs} in the schema"]
    hints = typing.get_type_hints(record_type)
    for field, avro_field in zip(fields, schema.fields, strict=True):
        here = f"{where}.{field.name}"
        problems += _type_problems(here, hints[field.name], avro_field.type)
        if field.default is not dataclasses.MISSING and (
            not avro_field.has_default or avro_field.default != field.default
        ):
            theirs_default = repr(avro_field.default) if avro_field.has_default else "none"
            problems.append(
                f"{here}: default {field.default!r} in records.py, {theirs_default} in the schema"
            )
    return problems


def _type_problems(where: str, annotation: Any, schema: avro.schema.Schema) -> list[str]:
    if (inner := optional_inner(annotation)) is not None:
        branches = schema.schemas if isinstance(schema, avro.schema.UnionSchema) else []
        others = [branch for branch in branches if branch.type != "null"]
        if len(branches) != 2 or len(others) != 1:
            return [f"{where}: optional in records.py, {schema} in the schema"]
        return _type_problems(where, inner, others[0])
    if get_origin(annotation) is tuple:
        if not isinstance(schema, avro.schema.ArraySchema):
            return [f"{where}: a tuple in records.py, {schema} in the schema"]
        return _type_problems(f"{where}[]", get_args(annotation)[0], schema.items)
    if dataclasses.is_dataclass(annotation):
        return _record_problems(where, annotation, schema)
    expected = _LEAVES.get(annotation)
    if expected is None:
        return [f"{where}: {annotation!r} in records.py has no Avro type"]
    if (schema.type, schema.get_prop("logicalType")) != expected:
        return [f"{where}: {annotation.__name__} in records.py, {schema} in the schema"]
    return []
