"""The emulator's one frozen settings object, read from ``EMULATOR_*`` variables once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from topcoins.emulator.universe import CC_RANKED, CMC_LISTED
from topcoins.settings import SettingsError

__all__ = ["EmulatorConfig"]


@dataclass(frozen=True)
class EmulatorConfig:
    """How one emulator runs. An empty ``cmc_api_key`` accepts any non-empty CMC key;
    an empty ``cryptocompare_api_key`` lets CryptoCompare calls through without a key."""

    host: str = "0.0.0.0"
    port: int = 6668
    seed: int = 42
    tick_seconds: float = 1.0
    cmc_api_key: str = field(default="", repr=False)
    cryptocompare_api_key: str = field(default="", repr=False)
    log_level: str = "INFO"
    log_format: str = "json"  # LOG_FORMAT, shared with the other components
    cc_ranked: int = CC_RANKED  # assets CryptoCompare ranks
    cmc_listed: int = CMC_LISTED  # assets CoinMarketCap lists

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise SettingsError(f"EMULATOR_PORT must be from 1 to 65535, got {self.port}")
        if self.tick_seconds < 0:
            raise SettingsError(
                f"EMULATOR_TICK_SECONDS must be 0 (no drift) or more, got {self.tick_seconds}"
            )
        if self.log_format not in ("json", "text"):
            raise SettingsError(f"LOG_FORMAT must be json or text, got {self.log_format!r}")
        for variable, count in (("CC_RANKED", self.cc_ranked), ("CMC_LISTED", self.cmc_listed)):
            if not 1 <= count <= 10_000:
                raise SettingsError(f"EMULATOR_{variable} must be from 1 to 10000, got {count}")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EmulatorConfig:
        """Build the config from ``EMULATOR_HOST``, ``_PORT``, ``_SEED``, ``_TICK_SECONDS``,
        ``_CC_RANKED``, ``_CMC_LISTED``, ``_CMC_API_KEY``, ``_CRYPTOCOMPARE_API_KEY`` and
        ``_LOG_LEVEL``; unset ones default."""
        parsers: dict[str, tuple[str, type]] = {
            "host": ("EMULATOR_HOST", str),
            "port": ("EMULATOR_PORT", int),
            "seed": ("EMULATOR_SEED", int),
            "tick_seconds": ("EMULATOR_TICK_SECONDS", float),
            "cc_ranked": ("EMULATOR_CC_RANKED", int),
            "cmc_listed": ("EMULATOR_CMC_LISTED", int),
            "cmc_api_key": ("EMULATOR_CMC_API_KEY", str),
            "cryptocompare_api_key": ("EMULATOR_CRYPTOCOMPARE_API_KEY", str),
            "log_level": ("EMULATOR_LOG_LEVEL", str),
            "log_format": ("LOG_FORMAT", str),
        }
        values: dict[str, Any] = {}
        for name, (variable, parse) in parsers.items():
            raw = env.get(variable, "").strip()
            if not raw:
                continue
            try:
                values[name] = parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{variable}: expected {parse.__name__}, got {raw!r}") from exc
        if "log_level" in values:
            values["log_level"] = values["log_level"].upper()
        if "log_format" in values:
            values["log_format"] = values["log_format"].lower()
        return cls(**values)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The configured API keys, for log redaction."""
        return tuple(key for key in (self.cmc_api_key, self.cryptocompare_api_key) if key)

    def public_dict(self) -> dict[str, Any]:
        """Every setting with the API keys masked, for the start-up log line."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("cmc_api_key", "cryptocompare_api_key"):
            out[name] = "***" if out[name] else ""
        return out
