"""A throw-away certificate authority for local secured brokers and their tests (``openssl``).

``LocalPki(folder).issue("server", hosts=("localhost", "127.0.0.1"))`` writes PEM files
signed by the folder's CA: ``ca.pem``, ``<name>.pem`` (certificate) and ``<name>.key``
(unencrypted PKCS#8 key). Nothing here is meant for production.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CertFiles", "LocalPki", "PkiError"]

_DAYS = "2"
_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")  # fast to make


class PkiError(RuntimeError):
    """``openssl`` is missing or failed."""


@dataclass(frozen=True)
class CertFiles:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise PkiError("making test certificates needs openssl: apt-get install openssl")
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise PkiError(f"openssl {args[0]} failed: {result.stderr.strip()[-500:]}")


def _san(hosts: tuple[str, ...]) -> str:
    entries = []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
            entries.append(f"IP:{host}")
        except ValueError:
            entries.append(f"DNS:{host}")
    return ",".join(entries)


class LocalPki:
    """A CA in ``folder`` (created on first use) that issues server and client certificates."""

    def __init__(self, folder: Path, name: str = "topcoins-test-ca") -> None:
        self.folder = folder
        self.ca = CertFiles(folder / "ca.pem", folder / "ca.key")
        if not self.ca.cert.exists():
            folder.mkdir(parents=True, exist_ok=True)
            _openssl(
                "req", "-x509", *_KEY, "-nodes", "-days", _DAYS,
                "-subj", f"/CN={name}", "-keyout", str(self.ca.key), "-out", str(self.ca.cert),
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                cwd=folder,
            )  # fmt: skip

    def issue(self, name: str, hosts: tuple[str, ...] = ()) -> CertFiles:
        """A certificate for ``name`` (its CN), with ``hosts`` as subject alternative names."""
        files = CertFiles(self.folder / f"{name}.pem", self.folder / f"{name}.key")
        csr = self.folder / f"{name}.csr"
        _openssl(
            "req", "-new", *_KEY, "-nodes", "-subj", f"/CN={name}",
            "-keyout", str(files.key), "-out", str(csr),
            cwd=self.folder,
        )  # fmt: skip
        extensions = self.folder / f"{name}.ext"
        lines = ["basicConstraints=CA:FALSE", "extendedKeyUsage=serverAuth,clientAuth"]
        if hosts:
            lines.append(f"subjectAltName={_san(hosts)}")
        extensions.write_text("\n".join(lines) + "\n")
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(self.ca.cert), "-CAkey", str(self.ca.key),
            "-CAcreateserial", "-days", _DAYS, "-out", str(files.cert),
            "-extfile", str(extensions),
            cwd=self.folder,
        )  # fmt: skip
        return files
