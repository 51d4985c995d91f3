"""Checks that every current schema is fully compatible with every published version.

"Fully" means both directions: the current schema of each record type (the version
``versions.CURRENT`` binds it to) reads messages written with any published version
(backward), and a reader still on a published version reads messages written with the
current schema (forward). Run ``python -m topcoins.schemas.compat``; it exits 1 and names
each problem when a change is incompatible, or when a record dataclass does not match the
schema version it is bound to.
"""

from __future__ import annotations

import sys

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from topcoins.schemas.versions import SchemaMismatch, current_schemas, published_schemas

__all__ = ["compatibility_problems", "main"]


def _problem(reader: avro.schema.Schema, writer: avro.schema.Schema) -> str | None:
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return None
    return "; ".join(result.messages) or "incompatible"


def compatibility_problems(
    current: dict[str, avro.schema.Schema] | None = None,
    published: list[tuple[str, avro.schema.Schema]] | None = None,
) -> list[str]:
    """Every incompatibility between current and published schemas, as readable lines."""
    if current is None:
        current = current_schemas()
    problems: list[str] = []
    for name, old in published if published is not None else published_schemas():
        new = current.get(old.fullname)
        if new is None:
            problems.append(f"{name}: {old.fullname} was published but has no current schema")
            continue
        if (why := _problem(new, old)) is not None:
            problems.append(f"{name}: the current schema cannot read old messages: {why}")
        if (why := _problem(old, new)) is not None:
            problems.append(f"{name}: old readers cannot read new messages: {why}")
    return problems


def main() -> int:
    """Print the problems and return the exit code (0 when every schema is compatible)."""
    try:
        problems = compatibility_problems()
    except SchemaMismatch as exc:
        problems = [str(exc)]
    for line in problems:
        print(line, file=sys.stderr)
    if not problems:
        print("schemas: every current schema is fully compatible with every published version")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
