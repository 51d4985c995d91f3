import json

import avro.schema

from topcoins.schemas import codec
from topcoins.schemas.compat import compatibility_problems, main


def _schema(filename: str, change) -> avro.schema.Schema:
    doc = json.loads((codec.resources.files("topcoins.schemas") / filename).read_text())
    change(doc)
    return avro.schema.parse(json.dumps(doc))


def _current_with(schema: avro.schema.Schema) -> dict[str, avro.schema.Schema]:
    current = {(s := codec.load_schema(f)).fullname: s for f in codec.SCHEMA_FILES.values()}
    current[schema.fullname] = schema
    return current


def test_the_shipped_schemas_are_compatible_with_every_published_version(capsys):
    assert compatibility_problems() == []
    assert main() == 0


def test_an_added_optional_field_with_a_default_is_compatible():
    added = _schema(
        "top_coin.avsc",
        lambda d: d["fields"].append({"name": "x", "type": ["null", "long"], "default": None}),
    )
    assert compatibility_problems(current=_current_with(added)) == []


def test_a_changed_field_type_is_reported():
    def change(doc):
        next(f for f in doc["fields"] if f["name"] == "rank")["type"] = "string"

    problems = compatibility_problems(current=_current_with(_schema("top_coin.avsc", change)))
    assert any("top_coin.v1.avsc" in p and "cannot read old messages" in p for p in problems)


def test_a_new_required_field_without_default_is_reported():
    added = _schema("top_coin.avsc", lambda d: d["fields"].append({"name": "x", "type": "long"}))
    problems = compatibility_problems(current=_current_with(added))
    assert any("cannot read old messages" in p for p in problems)


def test_a_removed_required_field_breaks_old_readers():
    def remove(doc):
        doc["fields"] = [f for f in doc["fields"] if f["name"] != "match_rule"]

    problems = compatibility_problems(current=_current_with(_schema("top_coin.avsc", remove)))
    assert any("old readers cannot read new messages" in p for p in problems)
