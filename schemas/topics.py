"""Every Kafka topic topcoins writes, declared once: name, partitions, key, value, retention."""

from __future__ import annotations

from dataclasses import dataclass

from topcoins.schemas.records import (
    PriceSnapshot,
    ProducerStatus,
    RankingSnapshot,
    TopCoin,
    TopListMeta,
)

__all__ = ["META_KEY", "TopicSpec", "Topics"]

# Key of the TopListMeta record on the top-coins topic (no asset symbol starts with "_").
META_KEY = "_meta"

SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One topic's contract."""

    name: str
    partitions: int
    key: str
    value_types: tuple[type, ...]
    cleanup_policy: str
    retention_ms: int | None
    doc: str
    replication_factor: int = 1
    min_insync_replicas: int = 1

    @property
    def config(self) -> dict[str, str]:
        """Topic-level configuration used when the topic is created."""
        config = {
            "cleanup.policy": self.cleanup_policy,
            "min.insync.replicas": str(self.min_insync_replicas),
        }
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


@dataclass(frozen=True)
class Topics:
    """The topic set for one ``TOPIC_PREFIX``."""

    prices: TopicSpec
    ranks: TopicSpec
    top: TopicSpec
    status: TopicSpec

    @classmethod
    def for_prefix(
        cls,
        prefix: str,
        raw_retention_ms: int = SEVEN_DAYS_MS,
        replication_factor: int = 1,
        min_insync_replicas: int = 1,
    ) -> Topics:
        """Build the topic specs; tests pass a unique prefix to get fresh topics."""

        def spec(
            name: str, key: str, value_types: tuple[type, ...], *, doc: str, compacted: bool = False
        ) -> TopicSpec:
            return TopicSpec(
                name=f"{prefix}.{name}.v1",
                partitions=1,
                key=key,
                value_types=value_types,
                cleanup_policy="compact" if compacted else "delete",
                retention_ms=None if compacted else raw_retention_ms,
                doc=doc,
                replication_factor=replication_factor,
                min_insync_replicas=min_insync_replicas,
            )

        return cls(
            prices=spec(
                "prices",
                "provider name ('coinmarketcap')",
                (PriceSnapshot,),
                doc="Every CoinMarketCap price snapshot, as fetched (event log).",
            ),
            ranks=spec(
                "ranks",
                "provider name ('cryptocompare')",
                (RankingSnapshot,),
                doc="Every CryptoCompare ranking snapshot, as fetched (event log).",
            ),
            top=spec(
                "top",
                "CryptoCompare symbol, or '_meta' for the generation marker",
                (TopCoin, TopListMeta),
                compacted=True,
                doc="The joined top list: one TopCoin per ranked asset (tombstone when it "
                "leaves the ranking), then a TopListMeta that closes the generation.",
            ),
            status=spec(
                "status",
                "provider name ('coinmarketcap' or 'cryptocompare')",
                (ProducerStatus,),
                compacted=True,
                doc="Each producer's health after its latest poll: last success, last error.",
            ),
        )

    def all(self) -> tuple[TopicSpec, ...]:
        """Every topic, in the order the data flows."""
        return (self.prices, self.ranks, self.top, self.status)
