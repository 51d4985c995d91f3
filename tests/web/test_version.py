"""Build info: git commit and install time, 'unknown' when not found."""

from __future__ import annotations

import re
from pathlib import Path

import topcoins
from topcoins.web.version import UNKNOWN, build_time, git_commit, load_build_info


def test_commit_of_this_checkout() -> None:
    commit = git_commit(Path(__file__).parent)
    assert commit == UNKNOWN or re.fullmatch(r"[0-9a-f]{40}", commit)


def test_commit_outside_a_git_tree_is_unknown(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == UNKNOWN


def test_commit_of_a_missing_folder_is_unknown(tmp_path: Path) -> None:
    assert git_commit(tmp_path / "gone") == UNKNOWN


def test_build_time_of_the_installed_package() -> None:
    stamp = build_time("topcoins")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)


def test_build_time_of_an_unknown_distribution() -> None:
    assert build_time("no-such-distribution-topcoins") == UNKNOWN


def test_load_build_info() -> None:
    info = load_build_info()
    assert info.version == topcoins.__version__
    assert set(info.as_dict()) == {"version", "git_commit", "build_time"}
