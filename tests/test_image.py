"""The Docker image: locked dependencies with hashes, and no development-only module.

There is no Docker engine here, so these read the Dockerfile and the lock files, strip a wheel
with scripts/runtime_wheel.py, and run the CLI with the development-only modules hidden.
"""

from __future__ import annotations

import ast
import base64
import csv
import hashlib
import importlib.util
import io
import re
import sys
import tomllib
import zipfile
from importlib.abc import MetaPathFinder
from importlib.metadata import requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIRS = PYPROJECT["tool"]["setuptools"]["package-dir"]

spec = importlib.util.spec_from_file_location(
    "runtime_wheel", ROOT / "scripts" / "runtime_wheel.py"
)
assert spec is not None and spec.loader is not None
runtime_wheel = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runtime_wheel)


def locked(name: str) -> dict[str, tuple[str, int]]:
    """``{package: (version, number of hashes)}`` of a lock file."""
    text = (ROOT / name).read_text()
    pins = re.findall(r"^([\w.-]+)==(\S+)((?: \\\n\s+--hash=sha256:[0-9a-f]{64})*)", text, re.M)
    return {canonicalize_name(n): (v, hashes.count("--hash=")) for n, v, hashes in pins}


def assert_pinned(requirement: Requirement, pins: dict[str, tuple[str, int]]) -> None:
    version, hashes = pins.get(canonicalize_name(requirement.name), ("", 0))
    assert version, f"{requirement.name} is not in the lock: run scripts/lock"
    assert requirement.specifier.contains(version, prereleases=True), (requirement, version)
    assert hashes, f"{requirement.name} has no hash in the lock"


def test_the_lock_pins_every_runtime_dependency_and_extra_with_hashes() -> None:
    pins = locked("requirements.lock")
    for text in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(text)
        assert_pinned(requirement, pins)
        for extra in requirement.extras:  # uvicorn[standard]: uvloop, httptools, ...
            for needed in map(Requirement, requires(requirement.name) or []):
                if needed.marker and needed.marker.evaluate({"extra": extra}):
                    assert_pinned(needed, pins)
    assert all(hashes for _, hashes in pins.values())


def test_the_build_lock_pins_the_build_backend() -> None:
    pins = locked("requirements-build.lock")
    for text in PYPROJECT["build-system"]["requires"]:
        assert_pinned(Requirement(text), pins)


def _stages(dockerfile: str) -> list[list[str]]:
    """The instructions of each stage, continuation lines joined."""
    lines = re.sub(r"\\\n\s*", " ", dockerfile).splitlines()
    instructions = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    stages: list[list[str]] = []
    for instruction in instructions:
        if instruction.startswith("FROM "):
            stages.append([])
        stages[-1].append(instruction)
    return stages


def test_the_image_installs_the_locks_with_hashes_and_the_stripped_wheel_only() -> None:
    build, runtime = _stages((ROOT / "Dockerfile").read_text())
    installs = [i for stage in (build, runtime) for i in stage if "pip install" in i]
    assert installs == [
        "RUN pip install --require-hashes -r /tmp/requirements-build.lock",
        "RUN pip install --require-hashes -r /tmp/requirements.lock && rm /tmp/requirements.lock",
        "RUN pip install --no-deps /tmp/wheel/*.whl && pip check && rm -rf /tmp/wheel",
    ]
    assert any("scripts/runtime_wheel.py /tmp/wheel/topcoins-*.whl /wheel" in i for i in build)
    copies = [i for i in runtime if i.startswith("COPY ")]
    assert copies == ["COPY requirements.lock /tmp/", "COPY --from=build /wheel/ /tmp/wheel/"]
    allowed = (ROOT / ".dockerignore").read_text().splitlines()
    for needed in ("requirements.lock", "requirements-build.lock", "scripts/runtime_wheel.py"):
        assert f"!{needed}" in allowed


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_the_runtime_wheel_leaves_out_the_dev_only_files_and_records_the_rest(
    tmp_path: Path,
) -> None:
    files = {
        "topcoins/cli.py": b"cli",
        "topcoins/dev.py": b"dev",
        "topcoins/devices.py": b"not the dev module",
        "topcoins/emulator/data/recorded.json": b"{}",
        "topcoins/web/app.py": b"web",
        "topcoins-0.1.0.dist-info/METADATA": b"Name: topcoins",
    }
    wheel = tmp_path / "in" / "topcoins-0.1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("topcoins-0.1.0.dist-info/RECORD", "stale")

    out = runtime_wheel.runtime_wheel(wheel, tmp_path / "out")

    kept = ["topcoins/cli.py", "topcoins/devices.py", "topcoins/web/app.py"]
    kept.append("topcoins-0.1.0.dist-info/METADATA")
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == [*kept, "topcoins-0.1.0.dist-info/RECORD"]
        record = archive.read("topcoins-0.1.0.dist-info/RECORD").decode()
    rows = list(csv.reader(io.StringIO(record)))
    expected = [[name, _record_hash(files[name]), str(len(files[name]))] for name in kept]
    assert rows == [*expected, ["topcoins-0.1.0.dist-info/RECORD", "", ""]]


def _source(wheel_path: str) -> Path:
    """The file or folder of the source tree that a path inside the wheel comes from."""
    parts = wheel_path.rstrip("/").split("/")
    for depth in range(len(parts), 0, -1):
        package = ".".join(parts[:depth])
        if package in PACKAGE_DIRS:
            return ROOT / PACKAGE_DIRS[package] / "/".join(parts[depth:])
    raise AssertionError(f"{wheel_path} is in no package of pyproject.toml")


def _module(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    for package, folder in PACKAGE_DIRS.items():
        if relative.parts[: len(Path(folder).parts)] == Path(folder).parts:
            rest = relative.parts[len(Path(folder).parts) :]
            return ".".join([package, *rest]).removesuffix(".__init__")
    raise AssertionError(path)


DEV_ONLY_MODULES = tuple(
    p.rstrip("/").removesuffix(".py").replace("/", ".") for p in runtime_wheel.DEV_ONLY
)


def _is_dev_only(module: str) -> bool:
    return any(module == m or module.startswith(f"{m}.") for m in DEV_ONLY_MODULES)


def test_every_dev_only_path_is_in_the_source_tree() -> None:
    for path in runtime_wheel.DEV_ONLY:
        assert _source(path).exists(), f"{path}: renamed? update scripts/runtime_wheel.py"


def _imports(tree: ast.Module) -> list[tuple[str, bool]]:
    """``(module, at module level)`` of every absolute import."""
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(f"{node.module}.{alias.name}", id(node) in top) for alias in node.names]
    return found


def test_what_the_image_ships_imports_dev_only_modules_only_lazily_in_the_cli() -> None:
    lazy_ok = {"topcoins.cli", "topcoins.usage"}  # the dev commands and their help
    folders = {ROOT / folder for folder in PACKAGE_DIRS.values()}
    for path in sorted(p for folder in folders for p in folder.rglob("*.py")):
        module = _module(path)
        if _is_dev_only(module):
            continue
        for imported, at_top in _imports(ast.parse(path.read_text(), str(path))):
            if _is_dev_only(imported):
                assert module in lazy_ok and not at_top, f"{module} imports {imported}"


class _Hidden(MetaPathFinder):
    """Wraps a finder so that it finds no development-only module, as in the image."""

    def __init__(self, finder: MetaPathFinder) -> None:
        self.finder = finder

    def find_spec(self, name, path, target=None):
        return None if _is_dev_only(name) else self.finder.find_spec(name, path, target)


@pytest.fixture
def without_dev_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if _is_dev_only(m)]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_Hidden(f) for f in sys.meta_path])


@pytest.mark.usefixtures("without_dev_modules")
def test_the_cli_runs_the_components_and_offers_no_dev_command_without_them(capsys) -> None:
    from topcoins import cli

    with pytest.raises(ModuleNotFoundError):
        import topcoins.emulator  # noqa: F401
    parser = cli._parser()
    for command in ("pricing", "ranking", "worker", "web", "replay"):
        assert parser.parse_args([command]).command == command
    for command in cli.DEV_COMMANDS:
        with pytest.raises(SystemExit):
            parser.parse_args([command])
        assert f"invalid choice: '{command}'" in capsys.readouterr().err
