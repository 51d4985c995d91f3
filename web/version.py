"""What code is running: package version, git commit and build time, found once at startup.

Nothing here reads the environment. The commit comes from ``git rev-parse HEAD`` run in
this package's source folder (works for source checkouts and editable installs); the
build time is the modification time of the installed package metadata. Either is
``"unknown"`` when it cannot be found (for example, a wheel installed without git).
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import topcoins
from topcoins.formats import iso_utc

__all__ = ["UNKNOWN", "BuildInfo", "load_build_info"]

UNKNOWN = "unknown"
_SOURCE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class BuildInfo:
    """The answer of ``GET /version``."""

    version: str
    git_commit: str
    build_time: str

    def as_dict(self) -> dict[str, str]:
        """The fields as a JSON-ready mapping."""
        return asdict(self)


def load_build_info(source_dir: Path = _SOURCE_DIR, distribution: str = "topcoins") -> BuildInfo:
    """Collect the build info; never raises."""
    return BuildInfo(
        version=topcoins.__version__,
        git_commit=git_commit(source_dir),
        build_time=build_time(distribution),
    )


def git_commit(source_dir: Path) -> str:
    """The ``HEAD`` commit of the git work tree holding ``source_dir``, or ``"unknown"``."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=source_dir,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    commit = result.stdout.strip()
    is_sha = len(commit) in (40, 64) and all(c in "0123456789abcdef" for c in commit)
    return commit if is_sha else UNKNOWN


def build_time(distribution: str) -> str:
    """When the distribution's metadata was installed (ISO 8601 UTC), or ``"unknown"``."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return UNKNOWN
    for file in dist.files or ():
        if file.name in ("METADATA", "PKG-INFO"):
            try:
                mtime = Path(str(dist.locate_file(file))).stat().st_mtime
            except OSError:
                return UNKNOWN
            moment = datetime.fromtimestamp(mtime, UTC)
            return iso_utc(moment, "seconds")
    return UNKNOWN
