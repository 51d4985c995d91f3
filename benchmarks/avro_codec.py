"""How long do encoding and decoding one 5000-quote ``PriceSnapshot`` take, fastavro vs avro?

``codec`` is ``topcoins.schemas.codec`` (fastavro, from record to bytes and back, with its
checks); ``avro`` is the avro package's ``DatumWriter``/``DatumReader`` on the same schema,
from a ready dict to bytes and from bytes to a dict (so it is timed doing less). The script
first checks that both write the same bytes, then times ``--repeat`` runs of each, in
turns, in CPU time, and prints the median milliseconds and the median ratio avro/codec.

    python benchmarks/avro_codec.py [--quotes 5000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import avro.io

from topcoins.schemas import codec, versions
from topcoins.schemas.records import PriceQuote, PriceSnapshot


def snapshot(quotes: int) -> PriceSnapshot:
    """A price snapshot shaped like CoinMarketCap's, with a few missing values."""
    now = datetime(2026, 12, 4, 12, 0, 0, 123000, tzinfo=UTC)
    return PriceSnapshot(
        snapshot_id="5b0c54c4-8a5e-4bb4-9d1e-0c4b8a3a2f10",
        fetched_at=now,
        total_count=9813,
        quotes=tuple(
            PriceQuote(
                cmc_id=i + 1,
                symbol=f"C{i:04d}",
                name=f"Coin number {i}",
                slug=f"coin-number-{i}",
                cmc_rank=i + 1 if i % 50 else None,
                price_usd=60000.0 / (i + 1) ** 1.7 if i % 23 else None,
                volume_24h_usd=1e10 / (i + 1),
                last_updated=now - timedelta(seconds=i % 300) if i % 31 else None,
            )
            for i in range(quotes)
        ),
    )


def avro_datum(value: Any) -> Any:
    """The dict the avro package writes (records as dicts, arrays as lists)."""
    if isinstance(value, PriceSnapshot | PriceQuote):
        return {name: avro_datum(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, tuple):
        return [avro_datum(item) for item in value]
    return value


def cpu_ms(action: Callable[[], object]) -> float:
    """This process's CPU time for one ``action()`` (other load on the machine moves it less
    than wall time)."""
    started = time.process_time()
    action()
    return (time.process_time() - started) * 1000


def paired(slow: Callable[[], object], fast: Callable[[], object], repeat: int) -> list[float]:
    """Median ms of ``slow`` and of ``fast`` and the median of their ratios, run in turns."""
    pairs = [(cpu_ms(slow), cpu_ms(fast)) for _ in range(repeat)]
    return [
        statistics.median(s for s, _ in pairs),
        statistics.median(f for _, f in pairs),
        statistics.median(s / f for s, f in pairs),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    record = snapshot(args.quotes)
    schema = versions.current_schema(PriceSnapshot)
    header = codec.MAGIC + codec.fingerprint_of(schema)
    writer, reader = avro.io.DatumWriter(schema), avro.io.DatumReader(schema)
    datum = avro_datum(record)

    def avro_encode() -> bytes:
        buffer = io.BytesIO()
        buffer.write(header)
        writer.write(datum, avro.io.BinaryEncoder(buffer))
        return buffer.getvalue()

    data = codec.encode(record)
    if data != avro_encode():
        print("the codec's bytes differ from the avro package's", file=sys.stderr)
        return 1
    if codec.decode(data) != record:
        print("the codec does not read back what it wrote", file=sys.stderr)
        return 1

    def avro_decode() -> object:
        return reader.read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))

    results = {
        "encode": paired(avro_encode, lambda: codec.encode(record), args.repeat),
        "decode": paired(avro_decode, lambda: codec.decode(data), args.repeat),
    }
    print(f"PriceSnapshot with {args.quotes} quotes: {len(data)} bytes, identical in both")
    for name, (slow, fast, ratio) in results.items():
        print(f"{name}: avro {slow:7.1f} ms, codec (fastavro) {fast:6.1f} ms, {ratio:5.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
