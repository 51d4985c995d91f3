"""binding_problems: every way a record dataclass and its schema can disagree is named."""

import json
from dataclasses import dataclass
from datetime import datetime

import avro.schema
import pytest

from topcoins.schemas.binding import binding_problems

TIMESTAMP = {"type": "long", "logicalType": "timestamp-millis"}


@dataclass(frozen=True)
class Item:
    code: str


@dataclass(frozen=True)
class Row:
    n: int
    price: float | None
    at: datetime
    items: tuple[Item, ...]
    note: str | None = None


def row_schema(**changes) -> avro.schema.Schema:
    """The schema ``Row`` matches, with ``changes`` (field name -> new field, or None to
    drop it; ``name`` renames the record)."""
    fields = {
        "n": {"name": "n", "type": "long"},
        "price": {"name": "price", "type": ["null", "double"], "default": None},
        "at": {"name": "at", "type": TIMESTAMP},
        "items": {
            "name": "items",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Item",
                    "fields": [{"name": "code", "type": "string"}],
                },
            },
        },
        "note": {"name": "note", "type": ["null", "string"], "default": None},
    }
    name = changes.pop("name", "Row")
    fields |= changes
    doc = {"type": "record", "name": name, "fields": [f for f in fields.values() if f]}
    return avro.schema.parse(json.dumps(doc))


def test_a_matching_pair_has_no_problems():
    assert binding_problems(Row, row_schema()) == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"name": "Line"}, "Row: Row in records.py, Line in the schema"),
        (
            {"note": None},
            "Row: fields ['n', 'price', 'at', 'items', 'note'] in records.py, "
            "['n', 'price', 'at', 'items'] in the schema",
        ),
        ({"n": {"name": "n", "type": "string"}}, 'Row.n: int in records.py, "string"'),
        ({"n": {"name": "n", "type": "double"}}, 'Row.n: int in records.py, "double"'),
        ({"price": {"name": "price", "type": "double"}}, "Row.price: optional in records.py"),
        ({"n": {"name": "n", "type": ["null", "long"]}}, "Row.n: int in records.py, "),
        ({"at": {"name": "at", "type": "long"}}, 'Row.at: datetime in records.py, "long"'),
        ({"items": {"name": "items", "type": "string"}}, "Row.items: a tuple in records.py"),
        (
            {"items": {"name": "items", "type": {"type": "array", "items": "string"}}},
            "Row.items[]: a Item record in records.py",
        ),
        (
            {"note": {"name": "note", "type": ["null", "string"]}},
            "Row.note: default None in records.py, none in the schema",
        ),
        (
            {"note": {"name": "note", "type": ["string", "null"], "default": "-"}},
            "Row.note: default None in records.py, '-' in the schema",
        ),
    ],
    ids=[
        "record-name",
        "missing-field",
        "int-as-string",
        "int-as-double",
        "optional-as-required",
        "required-as-optional",
        "timestamp-as-long",
        "tuple-as-string",
        "nested-record-as-string",
        "no-default",
        "other-default",
    ],
)
def test_each_disagreement_is_named(changes, problem):
    problems = binding_problems(Row, row_schema(**changes))
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def record_schema(name: str, fields: list[dict]) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps({"type": "record", "name": name, "fields": fields}))


def test_the_same_fields_in_another_order_disagree():
    @dataclass(frozen=True)
    class Pair:
        a: int
        b: int

    schema = record_schema("Pair", [{"name": "b", "type": "long"}, {"name": "a", "type": "long"}])
    assert binding_problems(Pair, schema) == [
        "Pair: fields ['a', 'b'] in records.py, ['b', 'a'] in the schema"
    ]


def test_a_field_type_without_an_avro_type_is_named():
    @dataclass(frozen=True)
    class Odd:
        flag: bool

    schema = record_schema("Odd", [{"name": "flag", "type": "boolean"}])
    assert binding_problems(Odd, schema) == [
        "Odd.flag: <class 'bool'> in records.py has no Avro type"
    ]
