"""Parsers that turn one environment variable's text into a setting's value.

Each takes the raw text and returns the value or raises ``ValueError`` with what is
allowed; ``Settings.from_env`` adds the variable's name. A message never shows a secret.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

__all__ = [
    "api_key",
    "boolean",
    "choice",
    "finite_float",
    "idempotence",
    "log_format",
    "log_level",
    "non_empty",
    "non_negative_int",
    "non_negative_seconds",
    "one_of",
    "port",
    "positive",
    "refuse",
    "url",
]

T = TypeVar("T")


def refuse(parse: Callable[[str], T], bad: Callable[[T], bool], need: str) -> Callable[[str], T]:
    """``parse`` that raises ``ValueError("<need>, got <raw>")`` when ``bad(value)``."""

    def parse_checked(raw: str) -> T:
        value = parse(raw)
        if bad(value):
            raise ValueError(f"{need}, got {raw!r}")
        return value

    return parse_checked


def positive(parse: Callable[[str], T]) -> Callable[[str], T]:
    """``parse``, refusing a value of 0 or less."""
    return refuse(parse, lambda value: value <= 0, "must be greater than 0")  # type: ignore[operator]


finite_float = refuse(float, lambda value: not math.isfinite(value), "must be a finite number")
non_negative_seconds = refuse(finite_float, lambda value: value < 0, "must be 0 or more seconds")
non_negative_int = refuse(int, lambda value: value < 0, "must be 0 or more")
port = refuse(int, lambda value: not 0 < value < 65536, "must be a TCP port from 1 to 65535")


def choice(
    normalize: Callable[[str], str], *choices: str, listed: str = ""
) -> Callable[[str], str]:
    """``normalize(raw)`` when it is one of ``choices``; ``listed`` words them in the error."""
    allowed = listed or f"{', '.join(choices[:-1])} or {choices[-1]}"
    return refuse(normalize, lambda value: value not in choices, f"must be {allowed}")


def _stripped_lower(raw: str) -> str:
    return raw.strip().lower()


def _stripped_upper(raw: str) -> str:
    return raw.strip().upper()


def one_of(*choices: str) -> Callable[[str], str]:
    """Upper-cased, stripped ``raw`` when it is one of ``choices``."""
    return choice(_stripped_upper, *choices, listed=f"one of {', '.join(choices)}")


log_level = choice(str.upper, "DEBUG", "INFO", "WARNING", "ERROR")
log_format = choice(_stripped_lower, "json", "text")
idempotence = choice(_stripped_lower, "auto", "true", "false")
_BOOLEAN = choice(_stripped_lower, "true", "false", "1", "0", "yes", "no", listed="true or false")


def boolean(raw: str) -> bool:
    """``true``/``1``/``yes`` or ``false``/``0``/``no``, any case."""
    return _BOOLEAN(raw) in {"true", "1", "yes"}


def url(raw: str) -> str:
    """An http(s) URL without its trailing slashes."""
    if not raw.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https://, got {raw!r}")
    return raw.rstrip("/")


def non_empty(raw: str) -> str:
    """The stripped text; refused when nothing is left."""
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw.strip()


def _describe(char: str) -> str:
    if char in "\r\n":
        return "a line break"
    if char.isspace():
        return "a space" if char == " " else "whitespace"
    if not char.isascii():
        return "a non-ASCII character"
    return "a control character"


def api_key(raw: str) -> str:
    """The key without surrounding whitespace (``kubectl create secret --from-file`` leaves
    a trailing newline); a key that still holds anything but visible ASCII, which no API key
    has and an HTTP header may not carry, is refused. The message never shows the value."""
    key = raw.strip()
    for char in key:
        if not "!" <= char <= "~":
            raise ValueError(
                f"holds {_describe(char)}; an API key is visible ASCII only (the value is "
                "not shown)"
            )
    return key
