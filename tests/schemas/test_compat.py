import json

import avro.schema

from topcoins.schemas import versions
from topcoins.schemas.compat import compatibility_problems, main
from topcoins.schemas.records import TopCoin


def _top_coin(change) -> avro.schema.Schema:
    doc = json.loads(str(versions.current_schema(TopCoin)))
    change(doc)
    return avro.schema.parse(json.dumps(doc))


def _current_with(schema: avro.schema.Schema) -> dict[str, avro.schema.Schema]:
    return versions.current_schemas() | {schema.fullname: schema}


def test_the_shipped_schemas_are_compatible_with_every_published_version(capsys):
    assert compatibility_problems() == []
    assert main() == 0


def test_an_added_optional_field_with_a_default_is_compatible():
    added = _top_coin(
        lambda d: d["fields"].append({"name": "x", "type": ["null", "long"], "default": None}),
    )
    assert compatibility_problems(current=_current_with(added)) == []


def test_a_changed_field_type_is_reported():
    def change(doc):
        next(f for f in doc["fields"] if f["name"] == "rank")["type"] = "string"

    problems = compatibility_problems(current=_current_with(_top_coin(change)))
    assert any("top_coin.v1.avsc" in p and "cannot read old messages" in p for p in problems)


def test_a_new_required_field_without_default_is_reported():
    added = _top_coin(lambda d: d["fields"].append({"name": "x", "type": "long"}))
    problems = compatibility_problems(current=_current_with(added))
    assert any("cannot read old messages" in p for p in problems)


def test_a_removed_required_field_breaks_old_readers():
    def remove(doc):
        doc["fields"] = [f for f in doc["fields"] if f["name"] != "match_rule"]

    problems = compatibility_problems(current=_current_with(_top_coin(remove)))
    assert any("old readers cannot read new messages" in p for p in problems)


def test_a_record_bound_to_a_version_it_does_not_match_fails_the_check(monkeypatch, capsys):
    monkeypatch.setitem(versions.CURRENT, TopCoin, "top_coin.v1.avsc")
    versions.current_schema.cache_clear()
    try:
        assert main() == 1
    finally:
        versions.current_schema.cache_clear()
    assert "schemas/published/top_coin.v1.avsc disagree" in capsys.readouterr().err
