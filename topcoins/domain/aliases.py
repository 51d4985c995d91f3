"""The curated CryptoCompare -> CoinMarketCap alias table, kept as data in ``aliases.json``.

File format (validated on load, unknown keys rejected)::

    {"version": 1,
     "aliases": [
        {"cc_symbol": "TONCOIN", "cmc_id": 11419, "reason": "..."},
        {"cc_symbol": "LUNA", "cc_id": "948819", "cmc_id": 20314, "reason": "..."},
        {"cc_symbol": "XYZ", "cmc_symbol": "XYZ2", "reason": "..."}
     ]}

``cc_symbol`` is CryptoCompare's ``CoinInfo.Name``; an optional ``cc_id`` limits the entry
to that CryptoCompare asset (an entry with ``cc_id`` wins over one without). The target is
exactly one of ``cmc_id`` (preferred: CoinMarketCap ids are stable) or ``cmc_symbol``.
``reason`` says why, with the evidence.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from topcoins.domain.errors import AliasTableError

__all__ = ["AliasEntry", "AliasTable"]

_FORMAT_VERSION = 1
_ENTRY_KEYS = frozenset({"cc_symbol", "cc_id", "cmc_id", "cmc_symbol", "reason"})
_TOP_KEYS = frozenset({"$comment", "version", "aliases"})


@dataclass(frozen=True)
class AliasEntry:
    """One curated pairing: a CryptoCompare asset and the CoinMarketCap asset it is."""

    cc_symbol: str
    reason: str
    cc_id: str | None = None
    cmc_id: int | None = None
    cmc_symbol: str | None = None


class AliasTable:
    """Looks up the alias entry that applies to a ranked CryptoCompare asset."""

    def __init__(self, entries: Iterable[AliasEntry] = ()) -> None:
        self.entries: tuple[AliasEntry, ...] = tuple(entries)
        self._by_key: dict[tuple[str, str | None], AliasEntry] = {}
        for entry in self.entries:
            key = (entry.cc_symbol, entry.cc_id)
            if key in self._by_key:
                guard = f" with cc_id {entry.cc_id!r}" if entry.cc_id is not None else ""
                raise AliasTableError(
                    f"alias table lists {entry.cc_symbol!r}{guard} twice: keep one entry"
                )
            self._by_key[key] = entry

    @classmethod
    def load(cls, path: str | Path | None = None) -> AliasTable:
        """Read and validate an alias file; by default the ``aliases.json`` shipped here."""
        try:
            if path is None:
                source = "topcoins.domain/aliases.json"
                text = (
                    resources.files("topcoins.domain")
                    .joinpath("aliases.json")
                    .read_text(encoding="utf-8")
                )
            else:
                source = str(path)
                text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise AliasTableError(f"cannot read alias table {source}: {exc}") from exc
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AliasTableError(f"alias table {source} is not valid JSON: {exc}") from exc
        return cls.from_document(document, source=source)

    @classmethod
    def from_document(cls, document: Any, *, source: str = "<document>") -> AliasTable:
        """Validate a parsed alias file (``{"version": 1, "aliases": [...]}``)."""
        if not isinstance(document, dict):
            raise AliasTableError(f"alias table {source}: top level must be a JSON object")
        _refuse_unknown(document, _TOP_KEYS, f"alias table {source}", "top-level keys")
        if document.get("version") != _FORMAT_VERSION:
            raise AliasTableError(
                f"alias table {source}: version must be {_FORMAT_VERSION}, "
                f"got {document.get('version')!r}"
            )
        raw_entries = document.get("aliases")
        if not isinstance(raw_entries, list):
            raise AliasTableError(f"alias table {source}: 'aliases' must be a list of objects")
        entries = [_parse_entry(raw, f"{source} aliases[{i}]") for i, raw in enumerate(raw_entries)]
        return cls(entries)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, int | str]) -> AliasTable:
        """A table from ``{cc_symbol: cmc_id or cmc_symbol}``, for tests and experiments."""
        entries = []
        for cc_symbol, target in mapping.items():
            raw: dict[str, Any] = {"cc_symbol": cc_symbol, "reason": "given in code"}
            raw["cmc_id" if isinstance(target, int) else "cmc_symbol"] = target
            entries.append(_parse_entry(raw, f"mapping[{cc_symbol!r}]"))
        return cls(entries)

    def lookup(self, cc_symbol: str, cc_id: str | None) -> AliasEntry | None:
        """The entry for this exact CryptoCompare asset, else the symbol's general entry."""
        if cc_id is not None:
            entry = self._by_key.get((cc_symbol, cc_id))
            if entry is not None:
                return entry
        return self._by_key.get((cc_symbol, None))

    @property
    def reserved_cmc_ids(self) -> frozenset[int]:
        """CoinMarketCap ids named by an entry: only the alias rule may price them."""
        return frozenset(e.cmc_id for e in self.entries if e.cmc_id is not None)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"AliasTable({len(self.entries)} entries)"


def _parse_entry(raw: Any, where: str) -> AliasEntry:
    if not isinstance(raw, dict):
        raise AliasTableError(f"alias table {where}: each entry must be a JSON object")
    _refuse_unknown(raw, _ENTRY_KEYS, f"alias table {where}", "keys")
    cc_symbol = _text(raw, "cc_symbol", where, required=True)
    reason = _text(raw, "reason", where, required=True)
    cc_id = _text(raw, "cc_id", where, required=False)
    cmc_symbol = _text(raw, "cmc_symbol", where, required=False)
    cmc_id = raw.get("cmc_id")
    if cmc_id is not None and (
        not isinstance(cmc_id, int) or isinstance(cmc_id, bool) or cmc_id <= 0
    ):
        raise AliasTableError(
            f"alias table {where} ({cc_symbol}): cmc_id must be a positive integer, got {cmc_id!r}"
        )
    if (cmc_id is None) == (cmc_symbol is None):
        raise AliasTableError(
            f"alias table {where} ({cc_symbol}): give exactly one of cmc_id (preferred) "
            "or cmc_symbol"
        )
    return AliasEntry(
        cc_symbol=cc_symbol, reason=reason, cc_id=cc_id, cmc_id=cmc_id, cmc_symbol=cmc_symbol
    )


def _refuse_unknown(raw: dict[str, Any], allowed: frozenset[str], where: str, what: str) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise AliasTableError(
            f"{where}: unknown {what} {sorted(unknown)}; allowed: {sorted(allowed)}"
        )


def _text(raw: dict[str, Any], key: str, where: str, *, required: bool) -> Any:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise AliasTableError(
            f"alias table {where}: {key} must be a non-empty string without surrounding "
            f"spaces, got {value!r}"
        )
    return value
