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
    "kafka_security_protocol": _Env(
        "KAFKA_SECURITY_PROTOCOL",
        "PLAINTEXT",
        "How every Kafka client connects: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    ),
    "kafka_sasl_mechanism": _Env(
        "KAFKA_SASL_MECHANISM",
        "PLAIN",
        "SASL mechanism (SASL_* protocols): PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
    ),
    "kafka_sasl_username": _Env("KAFKA_SASL_USERNAME", "", "SASL user name."),
    "kafka_sasl_password": _Env(
        "KAFKA_SASL_PASSWORD", "", "SASL password (never logged).", secret=True
    ),
    "kafka_ssl_ca_file": _Env(
        "KAFKA_SSL_CA_FILE",
        "",
        "PEM file of the CA(s) that signed the brokers' certificates; empty = the system CAs.",
    ),
    "kafka_ssl_cert_file": _Env(
        "KAFKA_SSL_CERT_FILE", "", "PEM client certificate, for mutual TLS (with the key)."
    ),
    "kafka_ssl_key_file": _Env(
        "KAFKA_SSL_KEY_FILE", "", "PEM private key of KAFKA_SSL_CERT_FILE (unencrypted)."
    ),
    "kafka_ssl_check_hostname": _Env(
        "KAFKA_SSL_CHECK_HOSTNAME",
        "true",
        "Check that the broker certificate names the host connected to (true or false).",
    ),
    "kafka_idempotence": _Env(
        "KAFKA_IDEMPOTENCE",
        "auto",
        "Idempotent producers for the raw and status topics: auto (on when the broker "
        "grants a producer id; Tansu does not), true or false.",
    ),
    "topic_prefix": _Env(
        "TOPIC_PREFIX", "topcoins", "Prefix of every Kafka topic (and consumer group) name."
    ),
    "topic_replication_factor": _Env(
        "TOPIC_REPLICATION_FACTOR",
        "1",
        "Replication factor of the topics topcoins creates (3 on a production cluster).",
    ),
    "topic_min_insync_replicas": _Env(
        "TOPIC_MIN_INSYNC_REPLICAS",
        "1",
        "min.insync.replicas of the topics topcoins creates (2 on a production cluster).",
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
    "web_ops_port": _Env(
        "WEB_OPS_PORT",
        "",
        "Port that serves the web service's `/metrics` and `/diagnostics` (and `/healthz`, "
        "`/readyz`) instead of `WEB_PORT`; empty = all on `WEB_PORT`.",
    ),
    "web_limit_concurrency": _Env(
        "WEB_LIMIT_CONCURRENCY",
        "1000",
        "Open connections and requests in progress per web process; past it the server "
        "answers 503.",
    ),
    "web_stream_max": _Env(
        "WEB_STREAM_MAX",
        "1000",
        "Open `GET /stream` event streams per web process; more get 503 `too_many_streams`. "
        "uvicorn's limit is `WEB_LIMIT_CONCURRENCY` plus this, so streams never take the "
        "share of other requests.",
    ),
    "at_max_waiting": _Env(
        "AT_MAX_WAITING",
        "8",
        "`at=` requests that may wait per web process while one is answered; more get 503 "
        "`history_busy`.",
    ),
    "at_timeout_seconds": _Env(
        "AT_TIMEOUT_SECONDS",
        "5",
        "Longest time (s) one `at=` request takes, waiting included; then 503 `history_timeout`.",
    ),
    "worker_data_dir": _Env(
        "WORKER_DATA_DIR", "./.topcoins-data", "Local state directory of the stream worker."
    ),
    "worker_session_timeout_seconds": _Env(
        "WORKER_SESSION_TIMEOUT_SECONDS",
        "45",
        "Consumer group session timeout of the stream worker (s); `topcoins dev` uses 6.",
    ),
    "worker_heartbeat_seconds": _Env(
        "WORKER_HEARTBEAT_SECONDS",
        "3",
        "Consumer group heartbeat interval of the stream worker (s); `topcoins dev` uses 1.",
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
    "log_format": _Env(
        "LOG_FORMAT",
        "json",
        "Log lines on stderr: `json` (one object a line, for collectors) or `text` (short "
        "lines for people; `topcoins dev` uses it unless set).",
    ),
    "ops_host": _Env(
        "OPS_HOST",
        "0.0.0.0",
        "Address the producers' and the worker's health/metrics servers bind "
        "(`topcoins dev`: 127.0.0.1).",
    ),
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


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(f"must be 0 or more, got {raw!r}")
    return value


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError(f"must be DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return level


def _log_format(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"json", "text"}:
        raise ValueError(f"must be json or text, got {raw!r}")
    return value


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https://, got {raw!r}")
    return raw.rstrip("/")


def _describe(char: str) -> str:
    if char in "\r\n":
        return "a line break"
    if char.isspace():
        return "a space" if char == " " else "whitespace"
    if not char.isascii():
        return "a non-ASCII character"
    return "a control character"


def _api_key(raw: str) -> str:
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


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse_choice(raw: str) -> str:
        value = raw.strip().upper()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse_choice


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in {"true", "false", "1", "0", "yes", "no"}:
        raise ValueError(f"must be true or false, got {raw!r}")
    return value in {"true", "1", "yes"}


def _idempotence(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"auto", "true", "false"}:
        raise ValueError(f"must be auto, true or false, got {raw!r}")
    return value


def _non_empty(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw.strip()


_PARSERS: dict[str, Callable[[str], Any]] = {
    "kafka_bootstrap_servers": _non_empty,
    "kafka_security_protocol": _one_of("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    "kafka_sasl_mechanism": _one_of("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
    "kafka_ssl_check_hostname": _bool,
    "kafka_idempotence": _idempotence,
    "topic_min_insync_replicas": _positive(int),
    "worker_session_timeout_seconds": _positive(_finite_float),
    "worker_heartbeat_seconds": _positive(_finite_float),
    "topic_prefix": _non_empty,
    "raw_retention_hours": _positive(float),
    "topic_replication_factor": _positive(int),
    "cmc_base_url": _url,
    "cryptocompare_base_url": _url,
    "cmc_api_key": _api_key,
    "cryptocompare_api_key": _api_key,
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
    "web_ops_port": _port,
    "web_limit_concurrency": _positive(int),
    "web_stream_max": _non_negative_int,
    "at_max_waiting": _non_negative_int,
    "at_timeout_seconds": _positive(_finite_float),
    "consumer_fetch_wait_ms": _positive(int),
    "pricing_ops_port": _port,
    "ranking_ops_port": _port,
    "worker_ops_port": _port,
    "log_level": _log_level,
    "log_format": _log_format,
    "ops_host": _non_empty,
}


@dataclass(frozen=True)
class Settings:
    """Every topcoins setting; see ``ENV_DOCS`` (and the README) for variables and defaults."""

    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = field(default="", repr=False)
    kafka_ssl_ca_file: str = ""
    kafka_ssl_cert_file: str = ""
    kafka_ssl_key_file: str = ""
    kafka_ssl_check_hostname: bool = True
    kafka_idempotence: str = "auto"
    topic_prefix: str = "topcoins"
    topic_replication_factor: int = 1
    topic_min_insync_replicas: int = 1
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
    web_ops_port: int | None = None
    web_limit_concurrency: int = 1000
    web_stream_max: int = 1000
    at_max_waiting: int = 8
    at_timeout_seconds: float = 5.0
    worker_data_dir: str = "./.topcoins-data"
    worker_session_timeout_seconds: float = 45.0
    worker_heartbeat_seconds: float = 3.0
    consumer_fetch_wait_ms: int = 10
    pricing_ops_port: int = 9101
    ranking_ops_port: int = 9102
    worker_ops_port: int = 9103
    log_level: str = "INFO"
    log_format: str = "json"
    ops_host: str = "0.0.0.0"

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
            self.topic_min_insync_replicas,
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
