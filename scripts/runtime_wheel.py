"""Copies the topcoins wheel without the modules only development needs (the Docker image's).

The image runs ``topcoins pricing|ranking|worker|web|replay`` against a real Kafka. It leaves
out the local brokers (Tansu, Apache Kafka with its Maven download, their test PKI), the
``topcoins dev`` runner with its process supervisor, and the provider emulator with its ~900 KB
of recorded answers; ``topcoins`` then offers no ``dev``, ``broker`` or ``emulator`` command.

    python scripts/runtime_wheel.py dist/topcoins-0.1.0-py3-none-any.whl OUT_DIR
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import sys
import zipfile
from pathlib import Path

# Paths inside the wheel (a trailing slash: a whole package).
DEV_ONLY = (
    "topcoins/emulator/",
    "topcoins/dev.py",
    "topcoins/dev_summary.py",
    "topcoins/supervisor.py",
    "topcoins/brokers.py",
    "topcoins/local_pki.py",
)


def is_dev_only(name: str) -> bool:
    return any(name.startswith(p) if p.endswith("/") else name == p for p in DEV_ONLY)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def runtime_wheel(wheel: Path, out_dir: Path) -> Path:
    """Write ``out_dir/<wheel's name>`` without the ``DEV_ONLY`` files and with a new RECORD."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / wheel.name
    record = io.StringIO()
    rows = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as copy:
        (record_name,) = [n for n in source.namelist() if n.endswith(".dist-info/RECORD")]
        for info in source.infolist():
            if info.filename == record_name or is_dev_only(info.filename):
                continue
            data = source.read(info)
            copy.writestr(info, data)
            rows.writerow([info.filename, _record_hash(data), len(data)])
        rows.writerow([record_name, "", ""])
        copy.writestr(record_name, record.getvalue())
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(runtime_wheel(Path(argv[0]), Path(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
