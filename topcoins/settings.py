"""One typed, frozen settings object read from the environment once, in ``main()``.

Nothing else in topcoins reads ``os.environ``: every component receives a ``Settings``
and tests build one from a plain dict with ``Settings.from_env({...})``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from topcoins.schemas.topics import Topics

__all__ = ["ENV_DOCS", "Settings", "SettingsError"]

T = TypeVar("T")


class SettingsError(ValueError):
    """An environment variable is missing or has a value that cannot be used."""


@dataclass(frozen=True)
class _Env:
    """How one setting is read: variable name, default, parser and a one-line description."""

    name: str
    default: str
    doc: str
    secret: bool = False


# field name -> environment variable. The README's settings table is generated from this.
ENV_DOCS: dict[str, _Env] = {
    "kafka_bootstrap_servers": _Env(
        "KAFKA_BOOTSTRAP_SERVERS", "localhost:9092", "Kafka bootstrap servers, comma-separated."
    ),
    "topic_prefix": _Env(
        "TOPIC_PREFIX", "topcoins", "Prefix of every Kafka topic (and consumer group) name."
    ),
    "topic_replication_factor": _Env(
        "TOPIC_REPLICATION_FACTOR",
        "1",
        "Replication factor of the topics topcoins creates (3 on a production cluster).",
    ),
    "raw_retention_hours": _Env(
        "RAW_RETENTION_HOURS",
        "168",
        "How long the raw snapshot topics keep history (hours; used when creating them).",
    ),
    "cmc_base_url": _Env(
        "CMC_BASE_URL", "https://pro-api.coinmarketcap.com", "CoinMarketCap API base URL."
    ),
    "cmc_api_key": _Env("CMC_API_KEY", "", "CoinMarketCap API key (never logged).", secret=True),
    "cryptocompare_base_url": _Env(
        "CRYPTOCOMPARE_BASE_URL",
        "https://min-api.cryptocompare.com",
        "CryptoCompare API base URL.",
    ),
    "cryptocompare_api_key": _Env(
        "CRYPTOCOMPARE_API_KEY", "", "CryptoCompare API key (never logged).", secret=True
    ),
    "pricing_poll_seconds": _Env(
        "PRICING_POLL_SECONDS",
        "60",
        "Shortest time (s) between two CoinMarketCap polls; the credit budget may stretch it.",
    ),
    "ranking_poll_seconds": _Env(
        "RANKING_POLL_SECONDS",
        "60",
        "Shortest time (s) between two CryptoCompare ranking fetches; the rate limits may "
        "stretch it.",
    ),
    "pricing_depth": _Env(
        "PRICING_DEPTH",
        "1000",
        "How many CoinMarketCap listings (by market cap) each price snapshot holds.",
    ),
    "ranking_depth": _Env(
        "RANKING_DEPTH", "200", "How many assets the CryptoCompare ranking holds (max `limit`)."
    ),
    "http_timeout_seconds": _Env(
        "HTTP_TIMEOUT_SECONDS", "10", "Timeout of one provider HTTP call, in seconds."
    ),
    "producer_retry_attempts": _Env(
        "PRODUCER_RETRY_ATTEMPTS",
        "3",
        "Provider calls per poll, first one included, before the poll counts as failed.",
    ),
    "cmc_monthly_credits": _Env(
        "CMC_MONTHLY_CREDITS",
        "10000",
        "CoinMarketCap plan: API credits per month; polls are spaced so a 31-day month "
        "never uses more, retries included.",
    ),
    "cmc_calls_per_minute": _Env(
        "CMC_CALLS_PER_MINUTE", "30", "CoinMarketCap plan: API calls allowed per minute."
    ),
    "pricing_full_listing_seconds": _Env(
        "PRICING_FULL_LISTING_SECONDS",
        "21600",
        "Seconds between two full CoinMarketCap listings; the polls in between refresh only "
        "the ranked assets' quotes by id (0 = a full listing every poll).",
    ),
    "cryptocompare_calls_per_second": _Env(
        "CRYPTOCOMPARE_CALLS_PER_SECOND", "20", "CryptoCompare plan: calls allowed per second."
    ),
    "cryptocompare_calls_per_minute": _Env(
        "CRYPTOCOMPARE_CALLS_PER_MINUTE", "300", "CryptoCompare plan: calls allowed per minute."
    ),
    "cryptocompare_calls_per_hour": _Env(
        "CRYPTOCOMPARE_CALLS_PER_HOUR", "3000", "CryptoCompare plan: calls allowed per hour."
    ),
    "cryptocompare_calls_per_day": _Env(
        "CRYPTOCOMPARE_CALLS_PER_DAY", "7500", "CryptoCompare plan: calls allowed per day."
    ),
    "stale_after_seconds": _Env(
        "STALE_AFTER_SECONDS",
        "",
        "Age (s) after which the web service flags served data as stale; empty = per source, "
        "3 x its poll interval + HTTP_TIMEOUT_SECONDS.",
    ),
    "web_host": _Env("WEB_HOST", "0.0.0.0", "Address the web service binds."),
    "web_port": _Env("WEB_PORT", "6667", "Port of the web service."),
    "worker_data_dir": _Env(
        "WORKER_DATA_DIR", "./.topcoins-data", "Local state directory of the stream worker."
    ),
    "consumer_fetch_wait_ms": _Env(
        "CONSUMER_FETCH_WAIT_MS",
        "10",
        "Longest time a consumer fetch waits for data (ms); small values cut latency.",
    ),
    "pricing_ops_port": _Env(
        "PRICING_OPS_PORT", "9101", "Port of the pricing producer's health/metrics server."
    ),
    "ranking_ops_port": _Env(
        "RANKING_OPS_PORT", "9102", "Port of the ranking producer's health/metrics server."
    ),
    "worker_ops_port": _Env(
        "WORKER_OPS_PORT", "9103", "Port of the stream worker's health/metrics server."
    ),
    "log_level": _Env("LOG_LEVEL", "INFO", "Log level: DEBUG, INFO, WARNING or ERROR."),
}


def _positive(parse: Callable[[str], T]) -> Callable[[str], T]:
    def parse_positive(raw: str) -> T:
        value = parse(raw)
        if value <= 0:  # type: ignore[operator]
            raise ValueError(f"must be greater than 0, got {raw!r}")
        return value

    return parse_positive


def _finite_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {raw!r}")
    return value


def _non_negative_seconds(raw: str) -> float:
    value = _finite_float(raw)
    if value < 0:
        raise ValueError(f"must be 0 or more seconds, got {raw!r}")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 < value < 65536:
        raise ValueError(f"must be a TCP port from 1 to 65535, got {raw!r}")
    return value


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError(f"must be DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return level


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https://, got {raw!r}")
    return raw.rstrip("/")


def _non_empty(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw.strip()


_PARSERS: dict[str, Callable[[str], Any]] = {
    "kafka_bootstrap_servers": _non_empty,
    "topic_prefix": _non_empty,
    "raw_retention_hours": _positive(float),
    "topic_replication_factor": _positive(int),
    "cmc_base_url": _url,
    "cryptocompare_base_url": _url,
    "pricing_poll_seconds": _positive(float),
    "ranking_poll_seconds": _positive(float),
    "pricing_depth": _positive(int),
    "ranking_depth": _positive(int),
    "http_timeout_seconds": _positive(float),
    "producer_retry_attempts": _positive(int),
    "cmc_monthly_credits": _positive(int),
    "cmc_calls_per_minute": _positive(int),
    "pricing_full_listing_seconds": _non_negative_seconds,
    "cryptocompare_calls_per_second": _positive(int),
    "cryptocompare_calls_per_minute": _positive(int),
    "cryptocompare_calls_per_hour": _positive(int),
    "cryptocompare_calls_per_day": _positive(int),
    "stale_after_seconds": _positive(_finite_float),
    "web_port": _port,
    "consumer_fetch_wait_ms": _positive(int),
    "pricing_ops_port": _port,
    "ranking_ops_port": _port,
    "worker_ops_port": _port,
    "log_level": _log_level,
}


@dataclass(frozen=True)
class Settings:
    """Every topcoins setting; see ``ENV_DOCS`` (and the README) for variables and defaults."""

    kafka_bootstrap_servers: str = "localhost:9092"
    topic_prefix: str = "topcoins"
    topic_replication_factor: int = 1
    raw_retention_hours: float = 168.0
    cmc_base_url: str = "https://pro-api.coinmarketcap.com"
    cmc_api_key: str = field(default="", repr=False)
    cryptocompare_base_url: str = "https://min-api.cryptocompare.com"
    cryptocompare_api_key: str = field(default="", repr=False)
    pricing_poll_seconds: float = 60.0
    ranking_poll_seconds: float = 60.0
    pricing_depth: int = 1000
    ranking_depth: int = 200
    http_timeout_seconds: float = 10.0
    producer_retry_attempts: int = 3
    cmc_monthly_credits: int = 10_000
    cmc_calls_per_minute: int = 30
    pricing_full_listing_seconds: float = 21_600.0
    cryptocompare_calls_per_second: int = 20
    cryptocompare_calls_per_minute: int = 300
    cryptocompare_calls_per_hour: int = 3_000
    cryptocompare_calls_per_day: int = 7_500
    stale_after_seconds: float | None = None
    web_host: str = "0.0.0.0"
    web_port: int = 6667
    worker_data_dir: str = "./.topcoins-data"
    consumer_fetch_wait_ms: int = 10
    pricing_ops_port: int = 9101
    ranking_ops_port: int = 9102
    worker_ops_port: int = 9103
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping; unset variables take their defaults."""
        values: dict[str, Any] = {}
        for name, spec in ENV_DOCS.items():
            raw = env.get(spec.name)
            if raw is None or raw == "":
                continue
            parse = _PARSERS.get(name, str)
            try:
                values[name] = parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{spec.name}: {exc}") from exc
        return cls(**values)

    @property
    def topics(self) -> Topics:
        """The topic contracts for this ``TOPIC_PREFIX`` and retention."""
        from topcoins.schemas.topics import Topics

        return Topics.for_prefix(
            self.topic_prefix,
            int(self.raw_retention_hours * 3_600_000),
            self.topic_replication_factor,
        )

    @property
    def kafka_servers(self) -> list[str]:
        """The bootstrap servers as a list of ``host:port`` strings."""
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]

    @property
    def secrets(self) -> tuple[str, ...]:
        """The non-empty secret values, for log redaction."""
        names = [name for name, spec in ENV_DOCS.items() if spec.secret]
        return tuple(value for name in names if (value := getattr(self, name)))

    def public_dict(self) -> dict[str, Any]:
        """All settings with secrets masked, for the start-up log line."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if ENV_DOCS[f.name].secret:
                value = "***" if value else ""
            out[f.name] = value
        return out
