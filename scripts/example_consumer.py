#!/usr/bin/env python3
"""Print the current top 10 from the joined topic, using only aiokafka, avro and the .avsc files.

This is what another team's consumer looks like: it does not import topcoins. It reads
the compacted ``<prefix>.top.v1`` topic from the beginning, decodes each value from Avro
single-object encoding (marker C3 01, 8-byte little-endian CRC-64-AVRO fingerprint of
the writer schema, Avro binary body) and keeps the latest generation: the rows a
``TopListMeta`` lists, all of its generation (the same ranking_snapshot_id and
pricing_snapshot_id as the meta). A meta with a missing row or a row of another
generation (left by a worker that died mid-generation) is ignored; the previous list stays.

    python scripts/example_consumer.py --bootstrap localhost:9092 --prefix topcoins

On a secured cluster it reads the same variables as topcoins: KAFKA_SECURITY_PROTOCOL,
KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_SSL_CA_FILE,
KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE and KAFKA_SSL_CHECK_HOSTNAME.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import math
import os
import ssl
import sys
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
from aiokafka import AIOKafkaConsumer, TopicPartition, errors
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.helpers import create_ssl_context

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "published"


def load_readers(folder: Path) -> dict[bytes, tuple[str, avro.io.DatumReader]]:
    """Fingerprint -> (record name, reader) for every .avsc file: every published version."""
    readers = {}
    for path in sorted(folder.glob("*.avsc")):
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


def listed_rows(meta: dict, rows: Mapping[str, dict]) -> list[dict] | None:
    """The rows ``meta`` lists, in its order; None when one is missing or belongs to another
    generation (another snapshot pair): never a list that mixes two generations."""
    generation = (meta["ranking_snapshot_id"], meta["pricing_snapshot_id"])
    listed = []
    for symbol in meta["symbols"]:
        row = rows.get(symbol)
        if row is None or (row["ranking_snapshot_id"], row["pricing_snapshot_id"]) != generation:
            return None
        listed.append(row)
    return listed


class AccessRefused(Exception):
    """The cluster refused our credentials or certificate; the message names the variable."""


def security_options(env: Mapping[str, str]) -> dict[str, Any]:
    """aiokafka's security keyword arguments from the KAFKA_* variables."""
    protocol = env.get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT"
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        context = create_ssl_context(
            cafile=env.get("KAFKA_SSL_CA_FILE") or None,
            certfile=env.get("KAFKA_SSL_CERT_FILE") or None,
            keyfile=env.get("KAFKA_SSL_KEY_FILE") or None,
        )
        context.check_hostname = env.get("KAFKA_SSL_CHECK_HOSTNAME", "true").lower() != "false"
        options["ssl_context"] = context
    if protocol.startswith("SASL_"):
        options["sasl_mechanism"] = env.get("KAFKA_SASL_MECHANISM") or "PLAIN"
        options["sasl_plain_username"] = env.get("KAFKA_SASL_USERNAME", "")
        options["sasl_plain_password"] = env.get("KAFKA_SASL_PASSWORD", "")
    return options


async def check_access(bootstrap: str, options: dict[str, Any]) -> None:
    """Raise ``AccessRefused`` when the first broker refuses us (aiokafka's clients only
    log that and retry); an unreachable broker is left to the clients to report."""
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    try:
        conn = await create_conn(host, int(port), request_timeout_ms=10_000, **options)
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message
        raise AccessRefused(f"KAFKA_SSL_CA_FILE: {bootstrap} is not trusted ({reason})") from None
    except (errors.SaslAuthenticationFailed, errors.AuthenticationFailedError):
        raise AccessRefused(
            "KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD: refused by the broker"
        ) from None
    except errors.KafkaConnectionError as exc:
        if isinstance(exc.__cause__, ssl.SSLError):
            reason = exc.__cause__.reason
            raise AccessRefused(f"KAFKA_SSL_CERT_FILE: TLS refused ({reason})") from None
        return
    except (OSError, errors.KafkaError):
        return
    conn.close()


async def partition_ids(bootstrap: str, topic: str, options: dict[str, Any]) -> list[int]:
    """The partition numbers of ``topic`` (empty when it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        return [p["partition"] for p in described["partitions"]]
    finally:
        await admin.close()


async def current_top(
    bootstrap: str, topic: str, count: int, options: dict[str, Any] | None = None
) -> list[dict]:
    """Read the topic to its end and return the first ``count`` rows of the last generation."""
    options = options or {}
    readers = load_readers(SCHEMAS)
    await check_access(bootstrap, options)
    partitions = [TopicPartition(topic, p) for p in await partition_ids(bootstrap, topic, options)]
    if not partitions:
        raise SystemExit(f"topic {topic} does not exist (yet)")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
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
                    listed = listed_rows(record, rows)
                    published = published if listed is None else listed
            positions = [await consumer.position(tp) for tp in partitions]
            caught_up = all(pos >= end[tp] for pos, tp in zip(positions, partitions, strict=True))
        return published[:count]
    finally:
        await consumer.stop()


def usable_price(price: float | None) -> float | None:
    """The topics' price rule (topcoins' ``schemas/prices.py``): finite and > 0, else None."""
    if price is None or not math.isfinite(price) or price <= 0:
        return None
    return price


def format_number(value: float) -> str:
    """The service's number text: the shortest digits that read back as the same double,
    positional, with a decimal point (``0.000010250185342518512``, never ``1.025e-05``).
    The same rule as topcoins' ``topcoins/formats.py``; this script imports no topcoins."""
    text = repr(float(value))
    if "e" in text:
        text = format(Decimal(text), "f")
    return text if "." in text else text + ".0"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or "localhost:9092"
    )
    parser.add_argument("--prefix", default="topcoins")
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args()
    topic = f"{args.prefix}.top.v1"
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # errors are reported below
    try:
        options = security_options(os.environ)
        top = asyncio.run(current_top(args.bootstrap, topic, args.count, options))
    except errors.KafkaConnectionError:
        print(
            f"example_consumer: cannot reach a Kafka broker at {args.bootstrap}: is it running? "
            "(`topcoins dev` prints its address as export KAFKA_BOOTSTRAP_SERVERS=...)",
            file=sys.stderr,
        )
        return 2
    except (AccessRefused, OSError, ssl.SSLError) as exc:  # OSError: an unreadable PEM file
        print(f"example_consumer: {exc}", file=sys.stderr)
        return 2
    if not top:
        print("no complete top list on the topic yet", file=sys.stderr)
        return 1
    print(f"{'rank':>4}  {'symbol':<10} {'price_usd':>18}  name")
    for row in top:
        price = usable_price(row["price_usd"])
        price = "" if price is None else format_number(price)
        print(f"{row['rank']:>4}  {row['symbol']:<10} {price:>18}  {row['name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
