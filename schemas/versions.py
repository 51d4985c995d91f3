"""The schema files: every published version, and the one each record type is written with.

Each version of each schema exists once, as ``published/<name>.v<N>.avsc``, and never
changes once published. ``CURRENT`` names the version each record type is encoded with;
readers decode messages of every published version into that type. ``current_schema``
refuses a record type whose dataclass (``records.py``) disagrees with its version.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import avro.schema

from topcoins.schemas import records
from topcoins.schemas.binding import binding_problems

__all__ = [
    "CURRENT",
    "SchemaMismatch",
    "current_schema",
    "current_schemas",
    "load_schema",
    "published_schemas",
]

# The published version each record type writes. To release a change, publish the new
# version first (readers learn it), then bind it here and change the dataclass to match.
CURRENT: dict[type, str] = {
    records.PriceSnapshot: "price_snapshot.v2.avsc",
    records.RankingSnapshot: "ranking_snapshot.v1.avsc",
    records.TopCoin: "top_coin.v2.avsc",
    records.TopListMeta: "top_list_meta.v1.avsc",
    records.ProducerStatus: "producer_status.v2.avsc",
}


class SchemaMismatch(TypeError):
    """A record dataclass that does not have the fields of the schema version it is bound to."""


@cache
def load_schema(filename: str) -> avro.schema.Schema:
    """Parse one published ``.avsc`` file (``published/<filename>``)."""
    folder = resources.files("topcoins.schemas").joinpath("published")
    return avro.schema.parse(folder.joinpath(filename).read_text(encoding="utf-8"))


def published_schemas() -> list[tuple[str, avro.schema.Schema]]:
    """Every schema version ever published, as (file name, schema), by file name."""
    folder = resources.files("topcoins.schemas").joinpath("published")
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".avsc"))
    return [(name, load_schema(name)) for name in names]


@cache
def current_schema(record_type: type) -> avro.schema.Schema:
    """The schema ``record_type`` is written with; ``SchemaMismatch`` if they disagree."""
    filename = CURRENT[record_type]
    schema = load_schema(filename)
    if problems := binding_problems(record_type, schema):
        raise SchemaMismatch(
            f"schemas/records.py and schemas/published/{filename} disagree: "
            + "; ".join(problems)
            + ". A published schema never changes: fix the dataclass, or publish a new "
            "version and bind it in CURRENT (schemas/versions.py)"
        )
    return schema


def current_schemas() -> dict[str, avro.schema.Schema]:
    """Full record name -> the schema it is written with, for every record type."""
    return {(schema := current_schema(t)).fullname: schema for t in CURRENT}
