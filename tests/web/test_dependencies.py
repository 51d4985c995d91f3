"""``topcoins.web`` loads neither the stream worker's package nor Faust, not even later.

Read from the source, without importing anything new: the imports each module of
``topcoins.web`` runs when it is imported (those inside functions and under
``TYPE_CHECKING`` do not run), followed through every first-party module they reach;
then, in each module reached, the imports inside its functions too (a lazy
``import faust`` would load Faust into the web the first time it runs).
``GET /?at=`` joins with ``topcoins.domain`` and reads with ``topcoins.history``, never
``topcoins.streams``.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

import topcoins.web

FORBIDDEN = ("faust", "mode", "topcoins.streams")


def module_file(name: str) -> Path | None:
    """The source file of first-party module ``name``; None for a name in a module."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:  # ``topcoins.formats.iso_utc``: its parent is no package
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


def imports_of(name: str, source: Path, *, in_functions: bool = False) -> set[str]:
    """The modules ``name`` imports when imported (with ``in_functions``: anywhere but
    under ``TYPE_CHECKING``), with ``from m import n``: ``m``, and ``m.n`` when that is a
    module, and the packages they are in."""
    package = name if source.name == "__init__.py" else name.rpartition(".")[0]
    body = ast.parse(source.read_text(encoding="utf-8")).body
    found: set[str] = set()
    for node in every_import(body) if in_functions else run_on_import(body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            found.update(
                f"{module}.{alias.name}"
                for alias in node.names
                if module.startswith("topcoins") and module_file(f"{module}.{alias.name}")
            )
    return {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 2)}


def is_type_checking(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )


def every_import(nodes: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements among ``nodes`` and in their bodies, but for ``TYPE_CHECKING``."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif is_type_checking(node):
            yield from every_import(node.orelse)
        else:
            yield from every_import(ast.iter_child_nodes(node))


def run_on_import(nodes: Iterable[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements among ``nodes`` that run when the module is imported."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not is_type_checking(node):
                yield from run_on_import(node.body)
            yield from run_on_import(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse):
                yield from run_on_import(block)
            yield from run_on_import(node.finalbody)
        elif isinstance(node, ast.ClassDef | ast.With):
            yield from run_on_import(node.body)


def reachable_from(roots: list[str]) -> set[str]:
    """Every module the roots import, following the first-party ones."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        source = module_file(name) if name.split(".")[0] == "topcoins" else None
        if source is not None:
            todo.extend(imports_of(name, source) - seen)
    return seen


def forbidden(names: Iterable[str]) -> list[str]:
    return sorted(
        name for name in names for f in FORBIDDEN if name == f or name.startswith(f"{f}.")
    )


@pytest.fixture(scope="module")
def reached() -> set[str]:
    """Every module that importing ``topcoins.web`` and its modules loads."""
    web = ["topcoins.web"] + [
        module.name for module in pkgutil.walk_packages(topcoins.web.__path__, "topcoins.web.")
    ]
    return reachable_from(web)


def test_web_imports_no_module_of_the_worker_and_nothing_that_imports_faust(reached):
    assert "topcoins.history" in reached  # the rule is checked where it matters
    assert forbidden(reached) == []


def test_no_module_the_web_loads_imports_faust_inside_a_function(reached):
    late = {}
    for name in reached:
        source = module_file(name) if name.split(".")[0] == "topcoins" else None
        if source is not None:
            late[name] = forbidden(imports_of(name, source, in_functions=True))
    assert "topcoins.kafka_security" in late  # the rule is checked where it mattered
    assert {name: found for name, found in late.items() if found} == {}
