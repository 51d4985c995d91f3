"""How one setting is declared, once, and how declared settings are read from the environment.

``setting(...)`` declares a field of a frozen dataclass: its variable, default, parser,
the components that read it and its meaning. Everything else (the typed default, the
docs, ``.env.example``, ``--help``, the parsing) is derived from that declaration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, TypeVar, cast, get_args

__all__ = [
    "COMPONENTS",
    "Component",
    "Setting",
    "SettingsError",
    "declared",
    "parse_env",
    "setting",
]

T = TypeVar("T")

# The ``topcoins`` subcommands that read settings; ``dev`` lists what it sets or interprets.
Component = Literal["pricing", "ranking", "worker", "web", "replay", "dev"]
COMPONENTS: tuple[Component, ...] = get_args(Component)


class SettingsError(ValueError):
    """An environment variable is missing or has a value that cannot be used."""


@dataclass(frozen=True)
class Setting:
    """One environment variable: name, default text, meaning, parser and the components
    that read it."""

    name: str
    default: str
    doc: str
    parse: Callable[[str], Any]
    read_by: tuple[Component, ...]
    secret: bool = False

    def is_read_by(self, component: Component | None) -> bool:
        """True when ``component`` reads it; None stands for every component."""
        return component is None or component in self.read_by


def setting(
    variable: str,
    read_by: Iterable[Component],
    parse: Callable[[str], T],
    doc: str,
    *,
    secret: bool = False,
) -> T:
    """A dataclass field read from an environment variable; ``variable`` is ``NAME=default``.

    The field's default is the parsed default text; an empty one is the empty text where
    ``parse`` accepts it (a string) and None where it does not (a number). A secret is left
    out of the repr and masked in ``public_dict``.
    """
    name, default = variable.split("=", 1)
    readers = set(read_by)
    spec = Setting(name, default, doc, parse, tuple(c for c in COMPONENTS if c in readers), secret)
    return cast(T, field(default=_typed(spec), repr=not secret, metadata={"setting": spec}))


def _typed(spec: Setting) -> Any:
    try:
        return spec.parse(spec.default)
    except ValueError:
        if spec.default:
            raise
        return None


def declared(cls: type) -> dict[str, Setting]:
    """Field name -> declaration of every ``setting(...)`` field of the dataclass ``cls``."""
    return {f.name: f.metadata["setting"] for f in fields(cls) if "setting" in f.metadata}


def parse_env(
    specs: Mapping[str, Setting], env: Mapping[str, str], component: Component | None
) -> dict[str, Any]:
    """Field name -> value of each variable of ``specs`` set in ``env`` that ``component``
    reads (None: all). Raises ``SettingsError`` naming a variable that cannot be parsed."""
    if component is not None and component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}: one of {', '.join(COMPONENTS)}")
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        raw = env.get(spec.name)
        if raw is None or raw == "" or not spec.is_read_by(component):
            continue
        try:
            values[name] = spec.parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{spec.name}: {exc}") from exc
    return values
