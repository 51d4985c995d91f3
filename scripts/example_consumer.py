#!/usr/bin/env python3
"""Print the current top 10 from the joined topic, using only aiokafka, avro and the .avsc files.

This is what another team's consumer looks like: it does not import topcoins. It reads
the compacted ``<prefix>.top.v1`` topic from the beginning, decodes each value from Avro
single-object encoding (marker C3 01, 8-byte little-endian CRC-64-AVRO fingerprint of
the writer schema, Avro binary body) and keeps the latest generation.

    python scripts/example_consumer.py --bootstrap localhost:9092 --prefix topcoins
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from pathlib import Path

import avro.io
import avro.schema
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


def load_readers(folder: Path) -> dict[bytes, tuple[str, avro.io.DatumReader]]:
    """Fingerprint -> (record name, reader) for every .avsc file (current and published)."""
    readers = {}
    for path in sorted(folder.glob("*.avsc")) + sorted(folder.glob("published/*.avsc")):
        schema = avro.schema.parse(path.read_text())
        fingerprint = bytes(schema.fingerprint("CRC-64-AVRO"))
        readers[fingerprint] = (schema.name, avro.io.DatumReader(schema))
    return readers


def decode(value: bytes, readers: dict[bytes, tuple[str, avro.io.DatumReader]]) -> tuple[str, dict]:
    """Decode one single-object-encoded value into (record name, fields)."""
    if value[:2] != b"\xc3\x01":
        raise ValueError("not Avro single-object encoded")
    name, reader = readers[value[2:10]]
    return name, reader.read(avro.io.BinaryDecoder(io.BytesIO(value[10:])))


async def partition_ids(bootstrap: str, topic: str) -> list[int]:
    """The partition numbers of ``topic`` (empty when it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        return [p["partition"] for p in described["partitions"]]
    finally:
        await admin.close()


async def current_top(bootstrap: str, topic: str, count: int) -> list[dict]:
    """Read the topic to its end and return the first ``count`` rows of the last generation."""
    readers = load_readers(SCHEMAS)
    partitions = [TopicPartition(topic, p) for p in await partition_ids(bootstrap, topic)]
    if not partitions:
        raise SystemExit(f"topic {topic} does not exist (yet)")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        rows: dict[str, dict] = {}
        published: list[dict] = []
        caught_up = False
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            messages = [m for part in batch.values() for m in part]
            if not messages and caught_up:
                break  # at the end offset, and a further poll brought nothing new
            for message in messages:
                key = message.key.decode()
                if message.value is None:
                    rows.pop(key, None)
                    continue
                name, record = decode(message.value, readers)
                if name == "TopCoin":
                    rows[key] = record
                elif name == "TopListMeta":
                    published = [rows[s] for s in record["symbols"] if s in rows]
            positions = [await consumer.position(tp) for tp in partitions]
            caught_up = all(pos >= end[tp] for pos, tp in zip(positions, partitions, strict=True))
        return published[:count]
    finally:
        await consumer.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="localhost:9092")
    parser.add_argument("--prefix", default="topcoins")
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args()
    top = asyncio.run(current_top(args.bootstrap, f"{args.prefix}.top.v1", args.count))
    if not top:
        print("no complete top list on the topic yet", file=sys.stderr)
        return 1
    print(f"{'rank':>4}  {'symbol':<10} {'price_usd':>18}  name")
    for row in top:
        price = "" if row["price_usd"] is None else f"{row['price_usd']:.8g}"
        print(f"{row['rank']:>4}  {row['symbol']:<10} {price:>18}  {row['name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
