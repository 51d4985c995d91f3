"""Creates topcoins' topics with their declared settings and reports mismatches."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from topcoins.schemas.topics import TopicSpec

__all__ = ["TopicMismatchError", "ensure_topics", "wait_for_broker"]

logger = logging.getLogger(__name__)


class TopicMismatchError(RuntimeError):
    """An existing topic's partitions or cleanup policy differ from its declared contract."""


async def wait_for_broker(bootstrap_servers: str, timeout: float = 60.0) -> None:
    """Return once a Kafka client can bootstrap; raise ``TimeoutError`` after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_error: Exception | None = None
    while loop.time() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=3000)
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


async def ensure_topics(bootstrap_servers: str, specs: tuple[TopicSpec, ...]) -> None:
    """Create missing topics with their declared config; raise on a partition mismatch."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10000)
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
        policies = await _cleanup_policies(admin, [spec.name for spec in specs])
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


async def _cleanup_policies(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, str]:
    """``cleanup.policy`` per topic, as far as the broker reports it."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    try:
        responses = await admin.describe_configs(resources)
    except KafkaError as exc:  # a broker without DescribeConfigs: say so, do not fail
        logger.warning("cannot read topic configs to check them", extra={"error": repr(exc)})
        return {}
    policies: dict[str, str] = {}
    for response in responses:
        for error_code, _, _, name, entries in (r[:5] for r in response.resources):
            for key, value, *_ in entries if error_code == 0 else ():
                if key == "cleanup.policy":
                    policies[name] = value
    return policies
