#!/usr/bin/env python3
"""Regenerate the settings and topics tables in README.md and the whole .env.example.

Both come from the code (``topcoins.settings.ENV_DOCS`` and ``schemas/topics.py``), so the
docs cannot drift from it: ``--check`` exits 1 when a file is out of date (a test runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from topcoins.schemas.topics import Topics
from topcoins.settings import ENV_DOCS

ROOT = Path(__file__).resolve().parent.parent

WRITERS = {
    "prices": "pricing producer",
    "ranks": "ranking producer",
    "top": "stream worker",
    "status": "pricing and ranking producers",
}
READERS = {
    "prices": "stream worker, `topcoins replay`, web (`at=`)",
    "ranks": "stream worker, `topcoins replay`, web (`at=`)",
    "top": "web replicas, `scripts/example_consumer.py`, anyone",
    "status": "web (`/status`)",
}


def settings_table() -> str:
    """The README's settings table."""
    rows = ["| Variable | Default | Read by | Meaning |", "| --- | --- | --- | --- |"]
    for spec in ENV_DOCS.values():
        default = f"`{spec.default}`" if spec.default else "(empty)"
        rows.append(f"| `{spec.name}` | {default} | {', '.join(spec.read_by)} | {spec.doc} |")
    return "\n".join(rows)


def topics_table() -> str:
    """The README's topics table (for the default prefix)."""
    topics = Topics.for_prefix("topcoins")
    rows = [
        "| Topic | Key | Value schema | Cleanup, retention | Written by | Read by |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for field in ("prices", "ranks", "top", "status"):
        spec = getattr(topics, field)
        values = ", ".join(f"`{t.__name__}`" for t in spec.value_types)
        retention = (
            f"{spec.cleanup_policy}, {spec.retention_ms // 86_400_000} days"
            if spec.retention_ms
            else spec.cleanup_policy
        )
        rows.append(
            f"| `{spec.name}` | {spec.key} | {values} | {retention} "
            f"| {WRITERS[field]} | {READERS[field]} |"
        )
    return "\n".join(rows)


def env_example() -> str:
    """The whole .env.example."""
    lines = [
        "# topcoins settings, each with its default. Every component reads its environment",
        "# once at start; export the ones you change (or use `set -a; . ./.env; set +a`).",
        "",
    ]
    for spec in ENV_DOCS.values():
        lines += [
            f"# {spec.doc}",
            f"# Read by: {', '.join(spec.read_by)}.",
            f"{spec.name}={spec.default}",
            "",
        ]
    return "\n".join(lines)


def _replace(text: str, marker: str, table: str) -> str:
    pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", flags=re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- {marker}:start/end --> markers")
    return pattern.sub(lambda m: f"{m.group(1)}{table}\n{m.group(2)}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    readme = ROOT / "README.md"
    wanted = {
        readme: _replace(
            _replace(readme.read_text(), "settings-table", settings_table()),
            "topics-table",
            topics_table(),
        ),
        ROOT / ".env.example": env_example(),
    }
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.name} is out of date: run python scripts/docs_tables.py", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path])
    return 0


if __name__ == "__main__":
    sys.exit(main())
