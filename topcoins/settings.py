"""One typed, frozen settings object read from the environment once, in ``main()``.

Nothing else in topcoins reads ``os.environ``: every component receives a ``Settings``
and tests build one from a plain dict with ``Settings.from_env({...})``. Each field is
declared once below (variable, default, readers, parser, meaning); the docs, the
``--help`` texts and ``.env.example`` are generated from ``ENV_DOCS``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from topcoins import settings_parsers as parse
from topcoins.settings_fields import Component, Setting, SettingsError, declared, parse_env, setting

if TYPE_CHECKING:
    from topcoins.schemas.topics import Topics

__all__ = ["ENV_DOCS", "Component", "Settings", "SettingsError"]

_KAFKA: tuple[Component, ...] = ("pricing", "ranking", "worker", "web", "replay")
_PRODUCERS: tuple[Component, ...] = ("pricing", "ranking")


@dataclass(frozen=True)
class Settings:
    """Every topcoins setting. ``component`` is the one whose variables were read (None:
    every variable); the settings it does not read keep their defaults."""

    kafka_bootstrap_servers: str = setting(
        "KAFKA_BOOTSTRAP_SERVERS=localhost:9092",
        (*_KAFKA, "dev"),
        parse.non_empty,
        "Kafka bootstrap servers, comma-separated.",
    )
    kafka_security_protocol: str = setting(
        "KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        _KAFKA,
        parse.one_of("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
        "How every Kafka client connects: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    )
    kafka_sasl_mechanism: str = setting(
        "KAFKA_SASL_MECHANISM=PLAIN",
        _KAFKA,
        parse.one_of("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
        "SASL mechanism (SASL_* protocols): PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
    )
    kafka_sasl_username: str = setting("KAFKA_SASL_USERNAME=", _KAFKA, str, "SASL user name.")
    kafka_sasl_password: str = setting(
        "KAFKA_SASL_PASSWORD=", _KAFKA, str, "SASL password (never logged).", secret=True
    )
    kafka_ssl_ca_file: str = setting(
        "KAFKA_SSL_CA_FILE=",
        _KAFKA,
        str,
        "PEM file of the CA(s) that signed the brokers' certificates; empty = the system CAs.",
    )
    kafka_ssl_cert_file: str = setting(
        "KAFKA_SSL_CERT_FILE=",
        _KAFKA,
        str,
        "PEM client certificate, for mutual TLS (with the key).",
    )
    kafka_ssl_key_file: str = setting(
        "KAFKA_SSL_KEY_FILE=", _KAFKA, str, "PEM private key of KAFKA_SSL_CERT_FILE (unencrypted)."
    )
    kafka_ssl_check_hostname: bool = setting(
        "KAFKA_SSL_CHECK_HOSTNAME=true",
        _KAFKA,
        parse.boolean,
        "Check that the broker certificate names the host connected to (true or false).",
    )
    kafka_idempotence: str = setting(
        "KAFKA_IDEMPOTENCE=auto",
        _KAFKA,
        parse.idempotence,
        "Idempotent producers for the raw and status topics: auto (on when the broker "
        "grants a producer id; Tansu does not), true or false.",
    )
    topic_prefix: str = setting(
        "TOPIC_PREFIX=topcoins",
        _KAFKA,
        parse.non_empty,
        "Prefix of every Kafka topic (and consumer group) name.",
    )
    topic_replication_factor: int = setting(
        "TOPIC_REPLICATION_FACTOR=1",
        _KAFKA,
        parse.positive(int),
        "Replication factor of the topics topcoins creates (3 on a production cluster).",
    )
    topic_min_insync_replicas: int = setting(
        "TOPIC_MIN_INSYNC_REPLICAS=1",
        _KAFKA,
        parse.positive(int),
        "min.insync.replicas of the topics topcoins creates (2 on a production cluster).",
    )
    raw_retention_hours: float = setting(
        "RAW_RETENTION_HOURS=168",
        _KAFKA,
        parse.positive(float),
        "How long the raw snapshot topics keep history (hours; used when creating them).",
    )
    cmc_base_url: str = setting(
        "CMC_BASE_URL=https://pro-api.coinmarketcap.com",
        ("pricing", "dev"),
        parse.url,
        "CoinMarketCap API base URL.",
    )
    cmc_api_key: str = setting(
        "CMC_API_KEY=",
        ("pricing", "dev"),
        parse.api_key,
        "CoinMarketCap API key (never logged).",
        secret=True,
    )
    cryptocompare_base_url: str = setting(
        "CRYPTOCOMPARE_BASE_URL=https://min-api.cryptocompare.com",
        ("ranking", "dev"),
        parse.url,
        "CryptoCompare API base URL.",
    )
    cryptocompare_api_key: str = setting(
        "CRYPTOCOMPARE_API_KEY=",
        ("ranking", "dev"),
        parse.api_key,
        "CryptoCompare API key (never logged).",
        secret=True,
    )
    pricing_poll_seconds: float = setting(
        "PRICING_POLL_SECONDS=60",
        ("pricing", "web", "dev"),
        parse.positive(float),
        "Shortest time (s) between two CoinMarketCap polls; the credit budget may stretch it.",
    )
    ranking_poll_seconds: float = setting(
        "RANKING_POLL_SECONDS=60",
        ("ranking", "web", "dev"),
        parse.positive(float),
        "Shortest time (s) between two CryptoCompare ranking fetches; the rate limits may "
        "stretch it.",
    )
    pricing_depth: int = setting(
        "PRICING_DEPTH=1000",
        ("pricing",),
        parse.positive(int),
        "How many CoinMarketCap listings (by market cap) each price snapshot holds.",
    )
    ranking_depth: int = setting(
        "RANKING_DEPTH=200",
        (*_PRODUCERS, "web"),
        parse.positive(int),
        "How many assets the CryptoCompare ranking holds (max `limit`).",
    )
    http_timeout_seconds: float = setting(
        "HTTP_TIMEOUT_SECONDS=10",
        (*_PRODUCERS, "web"),
        parse.positive(float),
        "Timeout of one provider HTTP call, in seconds.",
    )
    producer_retry_attempts: int = setting(
        "PRODUCER_RETRY_ATTEMPTS=3",
        _PRODUCERS,
        parse.positive(int),
        "Provider calls per poll, first one included, before the poll counts as failed.",
    )
    cmc_monthly_credits: int = setting(
        "CMC_MONTHLY_CREDITS=10000",
        ("pricing",),
        parse.positive(int),
        "CoinMarketCap plan: API credits per month; polls are spaced so a 31-day month "
        "never uses more, retries included.",
    )
    cmc_calls_per_minute: int = setting(
        "CMC_CALLS_PER_MINUTE=30",
        ("pricing",),
        parse.positive(int),
        "CoinMarketCap plan: API calls allowed per minute.",
    )
    pricing_full_listing_seconds: float = setting(
        "PRICING_FULL_LISTING_SECONDS=21600",
        ("pricing",),
        parse.non_negative_seconds,
        "Seconds between two full CoinMarketCap listings; the polls in between refresh only "
        "the ranked assets' quotes by id (0 = a full listing every poll).",
    )
    cryptocompare_calls_per_second: int = setting(
        "CRYPTOCOMPARE_CALLS_PER_SECOND=20",
        ("ranking",),
        parse.positive(int),
        "CryptoCompare plan: calls allowed per second.",
    )
    cryptocompare_calls_per_minute: int = setting(
        "CRYPTOCOMPARE_CALLS_PER_MINUTE=300",
        ("ranking",),
        parse.positive(int),
        "CryptoCompare plan: calls allowed per minute.",
    )
    cryptocompare_calls_per_hour: int = setting(
        "CRYPTOCOMPARE_CALLS_PER_HOUR=3000",
        ("ranking",),
        parse.positive(int),
        "CryptoCompare plan: calls allowed per hour.",
    )
    cryptocompare_calls_per_day: int = setting(
        "CRYPTOCOMPARE_CALLS_PER_DAY=7500",
        ("ranking",),
        parse.positive(int),
        "CryptoCompare plan: calls allowed per day.",
    )
    stale_after_seconds: float | None = setting(
        "STALE_AFTER_SECONDS=",
        ("web",),
        parse.positive(parse.finite_float),
        "Age (s) after which the web service flags served data as stale; empty = per source, "
        "3 x its poll interval + HTTP_TIMEOUT_SECONDS.",
    )
    web_host: str = setting(
        "WEB_HOST=0.0.0.0", ("web", "dev"), str, "Address the web service binds."
    )
    web_port: int = setting("WEB_PORT=6667", ("web", "dev"), parse.port, "Port of the web service.")
    web_ops_port: int | None = setting(
        "WEB_OPS_PORT=",
        ("web",),
        parse.port,
        "Port that serves the web service's `/metrics` and `/diagnostics` (and `/healthz`, "
        "`/readyz`) instead of `WEB_PORT`; empty = all on `WEB_PORT`.",
    )
    web_limit_concurrency: int = setting(
        "WEB_LIMIT_CONCURRENCY=1000",
        ("web",),
        parse.positive(int),
        "Open connections and requests in progress per web process; past it the server "
        "answers 503.",
    )
    web_stream_max: int = setting(
        "WEB_STREAM_MAX=1000",
        ("web",),
        parse.non_negative_int,
        "Open `GET /stream` event streams per web process; more get 503 `too_many_streams`. "
        "uvicorn's limit is `WEB_LIMIT_CONCURRENCY` plus this, so streams never take the "
        "share of other requests.",
    )
    at_max_waiting: int = setting(
        "AT_MAX_WAITING=8",
        ("web",),
        parse.non_negative_int,
        "`at=` requests that may wait per web process while one is answered; more get 503 "
        "`history_busy`.",
    )
    at_max_per_second: float = setting(
        "AT_MAX_PER_SECOND=50",
        ("web",),
        parse.positive(parse.finite_float),
        "`at=` requests started per second per web process; the next one waits its turn "
        "(within `AT_MAX_WAITING` and `AT_TIMEOUT_SECONDS`).",
    )
    at_timeout_seconds: float = setting(
        "AT_TIMEOUT_SECONDS=5",
        ("web",),
        parse.positive(parse.finite_float),
        "Longest time (s) one `at=` request takes, waiting included; then 503 `history_timeout`.",
    )
    worker_data_dir: str = setting(
        "WORKER_DATA_DIR=./.topcoins-data",
        ("worker", "dev"),
        str,
        "Local state directory of the stream worker.",
    )
    worker_session_timeout_seconds: float = setting(
        "WORKER_SESSION_TIMEOUT_SECONDS=45",
        ("worker",),
        parse.positive(parse.finite_float),
        "Consumer group session timeout of the stream worker (s); `topcoins dev` uses 6.",
    )
    worker_heartbeat_seconds: float = setting(
        "WORKER_HEARTBEAT_SECONDS=3",
        ("worker",),
        parse.positive(parse.finite_float),
        "Consumer group heartbeat interval of the stream worker (s); `topcoins dev` uses 1.",
    )
    consumer_fetch_wait_ms: int = setting(
        "CONSUMER_FETCH_WAIT_MS=10",
        _KAFKA,
        parse.positive(int),
        "Longest time a consumer fetch waits for data (ms); small values cut latency.",
    )
    pricing_ops_port: int = setting(
        "PRICING_OPS_PORT=9101",
        ("pricing",),
        parse.port,
        "Port of the pricing producer's health/metrics server.",
    )
    ranking_ops_port: int = setting(
        "RANKING_OPS_PORT=9102",
        ("ranking",),
        parse.port,
        "Port of the ranking producer's health/metrics server.",
    )
    worker_ops_port: int = setting(
        "WORKER_OPS_PORT=9103",
        ("worker",),
        parse.port,
        "Port of the stream worker's health/metrics server.",
    )
    log_level: str = setting(
        "LOG_LEVEL=INFO",
        (*_KAFKA, "dev"),
        parse.log_level,
        "Log level: DEBUG, INFO, WARNING or ERROR.",
    )
    log_format: str = setting(
        "LOG_FORMAT=json",
        (*_KAFKA, "dev"),
        parse.log_format,
        "Log lines on stderr: `json` (one object a line, for collectors) or `text` (short "
        "lines for people; `topcoins dev` uses it unless set).",
    )
    ops_host: str = setting(
        "OPS_HOST=0.0.0.0",
        (*_PRODUCERS, "worker", "dev"),
        parse.non_empty,
        "Address the producers' and the worker's health/metrics servers bind "
        "(`topcoins dev`: 127.0.0.1).",
    )
    component: Component | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], component: Component | None = None) -> Settings:
        """Settings from an environment mapping; unset variables take their defaults.

        With a ``component``, only the variables it reads are read and checked: a bad value
        meant for another component does not stop it. ``topcoins dev``, which starts them
        all, and the tests read every variable.
        """
        return cls(**parse_env(ENV_DOCS, env, component), component=component)

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

    def _own(self) -> Iterator[tuple[str, Setting, Any]]:
        for name, spec in ENV_DOCS.items():
            if spec.is_read_by(self.component):
                yield name, spec, getattr(self, name)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The non-empty secret values, for log redaction."""
        return tuple(value for _, spec, value in self._own() if spec.secret and value)

    def public_dict(self) -> dict[str, Any]:
        """The component's settings with secrets masked, for the start-up log line."""
        return {
            name: ("***" if value else "") if spec.secret else value
            for name, spec, value in self._own()
        }


# Field name -> its declaration; the README's settings table is generated from this.
ENV_DOCS: dict[str, Setting] = declared(Settings)
