"""Secret redaction: the one function every text that leaves a process goes through.

A secret can reach a message in more shapes than its plain text: ``repr(key)`` and
``repr(key.encode())`` (what httpx puts in an error about a header value), the
``unicode_escape`` and JSON-escaped forms, and its percent-encoding. ``redact`` replaces
every one of them (and those forms escaped once more, as inside a JSON log line) by ``***``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import quote

__all__ = ["MASK", "redact", "secret_forms"]

MASK = "***"


def _escaped(text: str) -> set[str]:
    """``text`` as the escaping layers a message may wrap it in (quotes stripped)."""
    return {
        text,
        repr(text)[1:-1],
        repr(text.encode("utf-8", "surrogatepass"))[2:-1],
        text.encode("unicode_escape").decode("ascii"),
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        quote(text, safe=""),
    }


@lru_cache(maxsize=64)
def secret_forms(secret: str) -> tuple[str, ...]:
    """Every text form of ``secret`` that ``redact`` replaces, longest first."""
    if not secret:
        return ()
    forms: set[str] = set()
    for once in _escaped(secret) | _escaped(secret.strip()):
        forms |= _escaped(once)
    return tuple(sorted((form for form in forms if form), key=len, reverse=True))


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of every non-empty secret replaced by ``***``."""
    forms = sorted(
        {form for secret in secrets for form in secret_forms(secret)}, key=len, reverse=True
    )
    for form in forms:
        text = text.replace(form, MASK)
    return text
