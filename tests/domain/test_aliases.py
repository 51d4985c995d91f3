"""The alias table: the shipped file loads, and bad data fails with a clear message."""

from __future__ import annotations

import json

import pytest

from topcoins.domain import AliasEntry, AliasTable, AliasTableError


def test_shipped_table_loads_with_the_documented_entries():
    table = AliasTable.load()

    assert table.lookup("TONCOIN", None).cmc_id == 11419
    assert table.lookup("LUNA", "948819").cmc_id == 20314
    assert table.lookup("LUNA", "931668").cmc_id == 4172
    assert table.lookup("LUNA", "1") is None  # a LUNA nobody vouched for: symbol rules apply
    assert table.lookup("LUNC", "931668").cmc_id == 4172
    assert table.lookup("BTT", None).cmc_id == 16086
    assert table.lookup("MANTLE", None).cmc_id == 27075
    assert table.lookup("RNDR", None).cmc_id == 5690
    for symbol in ("MANTLE", "RNDR"):
        assert table.lookup(symbol, None).reason.startswith("unverified")
    assert all(entry.reason for entry in table.entries)


def test_guarded_entry_wins_over_the_general_one():
    table = AliasTable.from_document(
        {
            "version": 1,
            "aliases": [
                {"cc_symbol": "X", "cmc_id": 1, "reason": "general"},
                {"cc_symbol": "X", "cc_id": "9", "cmc_id": 2, "reason": "that asset"},
            ],
        }
    )

    assert table.lookup("X", "9").cmc_id == 2
    assert table.lookup("X", "8").cmc_id == 1
    assert table.lookup("X", None).cmc_id == 1


def test_from_mapping_builds_id_and_symbol_targets():
    table = AliasTable.from_mapping({"A": 5, "B": "BEE"})

    assert table.lookup("A", None) == AliasEntry("A", "given in code", cmc_id=5)
    assert table.lookup("B", None) == AliasEntry("B", "given in code", cmc_symbol="BEE")
    assert table.reserved_cmc_ids == frozenset({5})


def entry(**fields):
    return {"version": 1, "aliases": [{"cc_symbol": "X", "reason": "r", **fields}]}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param([], "top level must be a JSON object", id="not-object"),
        pytest.param({"version": 2, "aliases": []}, "version must be 1", id="version"),
        pytest.param({"version": 1, "aliases": {}}, "must be a list", id="aliases-not-list"),
        pytest.param({"version": 1, "aliases": [], "x": 1}, "unknown top-level keys", id="top-key"),
        pytest.param(entry(), "exactly one of cmc_id", id="no-target"),
        pytest.param(entry(cmc_id=1, cmc_symbol="Y"), "exactly one of cmc_id", id="two-targets"),
        pytest.param(entry(cmc_id="11419"), "cmc_id must be a positive integer", id="id-string"),
        pytest.param(entry(cmc_id=True), "cmc_id must be a positive integer", id="id-bool"),
        pytest.param(entry(cmc_id=0), "cmc_id must be a positive integer", id="id-zero"),
        pytest.param(entry(cmc_id=1, reason=""), "reason must be a non-empty", id="no-reason"),
        pytest.param(entry(cmc_id=1, cc_id=948819), "cc_id must be a non-empty", id="cc-id-int"),
        pytest.param(entry(cmc_id=1, note="x"), "unknown keys ['note']", id="entry-key"),
        pytest.param(
            {"version": 1, "aliases": [{"cc_symbol": "X", "cmc_id": 1, "reason": "r"}] * 2},
            "lists 'X' twice",
            id="duplicate",
        ),
    ],
)
def test_bad_documents_are_rejected_with_the_reason(document, message):
    with pytest.raises(AliasTableError, match=message.replace("[", r"\[").replace("]", r"\]")):
        AliasTable.from_document(document, source="test.json")


def test_unreadable_or_invalid_files(tmp_path):
    with pytest.raises(AliasTableError, match="cannot read alias table"):
        AliasTable.load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(AliasTableError, match="not valid JSON"):
        AliasTable.load(broken)


def test_file_round_trip(tmp_path):
    path = tmp_path / "aliases.json"
    path.write_text(json.dumps(entry(cmc_id=3)), encoding="utf-8")

    assert AliasTable.load(path).lookup("X", None).cmc_id == 3
