import uuid

from aiokafka import AIOKafkaProducer

from topcoins.kafka_admin import ensure_topics
from topcoins.schemas.topics import META_KEY, Topics
from topcoins.streams.output_keys import live_row_keys


async def test_live_row_keys_follow_rows_and_tombstones(bootstrap_servers):
    topics = Topics.for_prefix(f"keys-{uuid.uuid4().hex[:8]}")
    await ensure_topics(bootstrap_servers, (topics.top,))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
    await producer.start()
    try:
        for key, value in [
            ("BTC", b"row"),
            ("ETH", b"row"),
            (META_KEY, b"meta"),
            ("ETH", None),
            ("SOL", b"row"),
        ]:
            await producer.send(topics.top.name, key=key.encode(), value=value)
        await producer.flush()
    finally:
        await producer.stop()

    assert await live_row_keys(bootstrap_servers, topics.top.name) == {"BTC", "SOL"}


async def test_an_empty_topic_has_no_live_rows(bootstrap_servers):
    topics = Topics.for_prefix(f"keys-{uuid.uuid4().hex[:8]}")
    await ensure_topics(bootstrap_servers, (topics.top,))
    assert await live_row_keys(bootstrap_servers, topics.top.name) == set()
