import logging
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from topcoins.kafka_admin import (
    TopicMismatchError,
    ensure_topics,
    report_topic_durability,
    wait_for_broker,
)
from topcoins.schemas.topics import Topics


async def test_creates_every_topic_with_its_contract_and_is_idempotent(bootstrap_servers):
    topics = Topics.for_prefix(f"adm-{uuid.uuid4().hex[:8]}")
    await ensure_topics(bootstrap_servers, topics.all())
    await ensure_topics(bootstrap_servers, topics.all())  # a second start finds them in place
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([spec.name for spec in topics.all()])
    finally:
        await admin.close()
    assert {t["topic"]: len(t["partitions"]) for t in described} == {
        spec.name: spec.partitions for spec in topics.all()
    }


async def _create(bootstrap_servers, name, partitions, config):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config)])
    finally:
        await admin.close()


async def test_a_topic_with_other_partitions_is_reported(bootstrap_servers):
    topics = Topics.for_prefix(f"adm-{uuid.uuid4().hex[:8]}")
    await _create(bootstrap_servers, topics.top.name, 3, {"cleanup.policy": "compact"})
    with pytest.raises(TopicMismatchError, match=r"has 3 partitions, the contract says 1"):
        await ensure_topics(bootstrap_servers, (topics.top,))


async def test_a_topic_with_another_cleanup_policy_is_reported(bootstrap_servers):
    topics = Topics.for_prefix(f"adm-{uuid.uuid4().hex[:8]}")
    await _create(bootstrap_servers, topics.top.name, 1, {"cleanup.policy": "delete"})
    with pytest.raises(
        TopicMismatchError, match=r"cleanup.policy=delete, the contract says compact"
    ):
        await ensure_topics(bootstrap_servers, (topics.top,))


async def test_waiting_for_an_absent_broker_times_out_with_the_address():
    with pytest.raises(TimeoutError, match=r"127\.0\.0\.1:1"):
        await wait_for_broker("127.0.0.1:1", timeout=1.0)


async def topics_made_with_less_durability(bootstrap_servers: str) -> tuple[Topics, Topics]:
    """A fresh prefix's topics, the top one made with replication 1 and min ISR 1, and the
    same topics under a contract of 3 and 2."""
    prefix = f"adm-{uuid.uuid4().hex[:8]}"
    existing = Topics.for_prefix(prefix)
    await ensure_topics(bootstrap_servers, (existing.top,))
    return existing, Topics.for_prefix(prefix, replication_factor=3, min_insync_replicas=2)


@pytest.mark.e2e
async def test_other_replication_or_min_insync_replicas_is_reported(bootstrap_servers, caplog):
    existing, wanted = await topics_made_with_less_durability(bootstrap_servers)
    with caplog.at_level(logging.WARNING, logger="topcoins.kafka_admin"):
        await ensure_topics(bootstrap_servers, (wanted.top,))  # a report, not a failure
    [warning] = [r.getMessage() for r in caplog.records if wanted.top.name in r.getMessage()]
    assert "replication factor 1 " in warning
    assert "the contract says 3 and 2" in warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="topcoins.kafka_admin"):
        await ensure_topics(bootstrap_servers, (existing.top,))
    assert not [r for r in caplog.records if existing.top.name in r.getMessage()]


@pytest.mark.e2e
async def test_a_reader_reports_other_durability_and_creates_nothing(bootstrap_servers, caplog):
    _, wanted = await topics_made_with_less_durability(bootstrap_servers)
    with caplog.at_level(logging.WARNING, logger="topcoins.kafka_admin"):
        await report_topic_durability(bootstrap_servers, (wanted.top, wanted.status))
    [warning] = [r.getMessage() for r in caplog.records if wanted.top.name in r.getMessage()]
    assert "the contract says 3 and 2" in warning
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        assert wanted.status.name not in await admin.list_topics()  # reported, not created
    finally:
        await admin.close()
