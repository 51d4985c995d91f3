"""Creates topcoins' topics with their declared settings and reports mismatches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from topcoins.kafka_access import probe_access
from topcoins.schemas.topics import TopicSpec

__all__ = ["TopicMismatchError", "ensure_topics", "wait_for_broker"]

logger = logging.getLogger(__name__)


class TopicMismatchError(RuntimeError):
    """An existing topic's partitions or cleanup policy differ from its declared contract."""


async def wait_for_broker(
    bootstrap_servers: str, timeout: float = 60.0, *, options: Mapping[str, Any] | None = None
) -> None:
    """Return once a Kafka client can bootstrap; raise ``TimeoutError`` after ``timeout`` s.

    ``options`` are the clients' security options (``kafka_client_options``); a broker that
    refuses them raises ``KafkaAccessError`` at once instead of being waited for.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_error: Exception | None = None
    servers = [s.strip() for s in bootstrap_servers.split(",") if s.strip()]
    while loop.time() < deadline:
        if await probe_access(servers, options or {}, timeout=3.0) is None:
            last_error = ConnectionError("no bootstrap server answered")
            await asyncio.sleep(0.5)
            continue
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers, request_timeout_ms=3000, **(options or {})
        )
        try:
            await admin.start()
            await admin.list_topics()
            return
        except (KafkaError, OSError) as exc:
            last_error = exc
        finally:
            await admin.close()
        await asyncio.sleep(0.5)
    raise TimeoutError(f"no Kafka broker answered at {bootstrap_servers} ({last_error!r})")


async def ensure_topics(
    bootstrap_servers: str,
    specs: tuple[TopicSpec, ...],
    *,
    options: Mapping[str, Any] | None = None,
) -> None:
    """Create missing topics with their declared config; raise on a partition mismatch.

    A replication factor or ``min.insync.replicas`` that differs from the contract is
    logged as a warning (the topic still works, with other durability).
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=10000, **(options or {})
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another component won
                await admin.create_topics(
                    [
                        NewTopic(
                            name=spec.name,
                            num_partitions=spec.partitions,
                            replication_factor=spec.replication_factor,
                            topic_configs=spec.config,
                        )
                        for spec in missing
                    ]
                )
            for spec in missing:
                logger.info("created topic", extra={"topic": spec.name, **spec.config})
        partitions = await _partition_counts(admin, [spec.name for spec in specs])
        configs = await _topic_configs(admin, [spec.name for spec in specs])
        policies = {
            name: c["cleanup.policy"] for name, c in configs.items() if "cleanup.policy" in c
        }
        _report_durability(specs, await _replication_factors(admin, specs), configs)
        problems = [
            f"topic {spec.name} has {found} partitions, the contract says {spec.partitions}"
            for spec in specs
            if (found := partitions.get(spec.name)) is not None and found != spec.partitions
        ] + [
            f"topic {spec.name} has cleanup.policy={found}, the contract says {spec.cleanup_policy}"
            for spec in specs
            if (found := policies.get(spec.name)) is not None and found != spec.cleanup_policy
        ]
        if problems:
            raise TopicMismatchError(
                "; ".join(problems) + ": fix the topic's settings, delete it, "
                "or use another TOPIC_PREFIX"
            )
    finally:
        await admin.close()


async def report_topic_durability(
    bootstrap_servers: str,
    specs: tuple[TopicSpec, ...],
    *,
    options: Mapping[str, Any] | None = None,
) -> None:
    """Warn about each existing topic of ``specs`` whose replication factor or
    ``min.insync.replicas`` differs from the contract; create nothing (for the readers, such
    as the web service, that never create topics)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=10000, **(options or {})
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        present = tuple(spec for spec in specs if spec.name in existing)
        if present:
            configs = await _topic_configs(admin, [spec.name for spec in present])
            _report_durability(present, await _replication_factors(admin, present), configs)
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition count per topic; a topic created a moment ago may report 0 for a while."""
    counts: dict[str, int] = {}
    for _ in range(50):
        described = await admin.describe_topics(names)
        counts = {t["topic"]: len(t["partitions"]) for t in described}
        if all(counts.get(name, 0) > 0 for name in names):
            break
        await asyncio.sleep(0.1)
    return counts


async def _topic_configs(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    """Each topic's configuration, as far as the broker reports it."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    try:
        responses = await admin.describe_configs(resources)
    except KafkaError as exc:  # a broker without DescribeConfigs: say so, do not fail
        logger.warning("cannot read topic configs to check them", extra={"error": repr(exc)})
        return {}
    configs: dict[str, dict[str, str]] = {}
    for response in responses:
        for error_code, _, _, name, entries in (r[:5] for r in response.resources):
            for key, value, *_ in entries if error_code == 0 else ():
                configs.setdefault(name, {})[key] = value
    return configs


async def _replication_factors(
    admin: AIOKafkaAdminClient, specs: tuple[TopicSpec, ...]
) -> dict[str, int]:
    """Replicas of each topic's first partition."""
    described = await admin.describe_topics([spec.name for spec in specs])
    return {
        t["topic"]: len(t["partitions"][0]["replicas"])
        for t in described
        if t.get("partitions") and "replicas" in t["partitions"][0]
    }


def _report_durability(
    specs: tuple[TopicSpec, ...],
    replication: Mapping[str, int],
    configs: Mapping[str, Mapping[str, str]],
) -> None:
    """Warn about each topic whose replication or ``min.insync.replicas`` is not the contract's."""
    for spec in specs:
        found_rf = replication.get(spec.name)
        found_isr = configs.get(spec.name, {}).get("min.insync.replicas")
        wanted_isr = spec.config["min.insync.replicas"]
        if (found_rf is not None and found_rf != spec.replication_factor) or (
            found_isr is not None and found_isr != wanted_isr
        ):
            logger.warning(
                f"topic {spec.name} has replication factor {found_rf} and "
                f"min.insync.replicas={found_isr}, the contract says {spec.replication_factor} "
                f"and {wanted_isr} (TOPIC_REPLICATION_FACTOR, TOPIC_MIN_INSYNC_REPLICAS): "
                "alter the topic, or set these to match",
                extra={
                    "topic": spec.name,
                    "replication_factor": found_rf,
                    "min_insync_replicas": found_isr,
                },
            )
