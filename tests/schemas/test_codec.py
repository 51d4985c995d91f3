import io
import json
from datetime import UTC, datetime

import avro.io
import avro.schema
import pytest

from topcoins.schemas import codec
from topcoins.schemas.codec import DecodeError, decode, decode_as, encode, fingerprint_of
from topcoins.schemas.records import (
    PriceQuote,
    PriceSnapshot,
    ProducerStatus,
    RankedAsset,
    RankingSnapshot,
    TopCoin,
    TopListMeta,
    utc_millis,
)

NOW = datetime(2026, 11, 27, 12, 30, 15, 123000, tzinfo=UTC)

RECORDS = [
    PriceSnapshot(
        "p1",
        NOW,
        9813,
        (
            PriceQuote(1, "BTC", "Bitcoin", "bitcoin", 1, 58216.51, 2.1e10, NOW),
            PriceQuote(
                5994, "SHIB", "Shiba Inu", "shiba-inu", 13, 1.3485738734875127e-05, None, None
            ),
            PriceQuote(99, "NOPE", "No Price", "no-price", None, None, None, None),
        ),
    ),
    RankingSnapshot(
        "r1",
        NOW,
        200,
        2426,
        (
            RankedAsset(1, "BTC", "Bitcoin", "1182", 1.5e10),
            RankedAsset(2, "CUSDC", "Compound USD Coin", "934512", None),
        ),
    ),
    TopCoin(1, "BTC", "Bitcoin", 1, 58216.51, "exact", 1.5e10, NOW, NOW, "r1", "p1"),
    TopCoin(2, "GAPS", "Gaps", None, None, "unmatched", None, NOW, None, "r1", None),
    TopListMeta(("BTC", "GAPS"), "r1", NOW, "p1", NOW, 2426, 200, 1),
    TopListMeta((), "r2", NOW, None, None, None, 200, 0),
    ProducerStatus("coinmarketcap", "pricing-producer", 60.0, NOW, NOW, "p1", None, None, None, 0),
    ProducerStatus(
        "cryptocompare", "ranking-producer", 5.0, NOW, None, None, "HTTP 503", "server", NOW, 3
    ),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_round_trip_keeps_every_value(record):
    assert decode(encode(record)) == record


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_wire_format_is_avro_single_object_encoding(record):
    data = encode(record)
    filename = codec.SCHEMA_FILES[type(record)]
    schema = avro.schema.parse((codec.resources.files("topcoins.schemas") / filename).read_text())
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == fingerprint_of(schema)
    # A plain Avro reader with only the .avsc file decodes the body.
    body = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
    assert set(body) == {field.name for field in schema.fields}


def test_fingerprint_matches_the_avro_specification_rabin_value():
    # CRC-64-AVRO of the canonical form '"int"', computed from the specification's algorithm.
    assert fingerprint_of(avro.schema.parse('"int"')).hex() == "8f5c393f1ad57572"


@pytest.mark.parametrize(
    "data",
    [None, b"", b"{}", b"\xc3\x01", b"\xc3\x01" + b"\x00" * 8 + b"x", b"\xc3\x02" + b"\x00" * 20],
)
def test_garbage_is_a_decode_error(data):
    with pytest.raises(DecodeError):
        decode(data)


def test_truncated_body_is_a_decode_error():
    data = encode(RECORDS[0])
    with pytest.raises(DecodeError):
        decode(data[: len(data) // 2])


def test_decode_as_checks_the_record_type():
    with pytest.raises(DecodeError, match="expected TopCoin, got TopListMeta"):
        decode_as(TopCoin, encode(RECORDS[4]))


def test_naive_datetimes_are_refused():
    naive = TopListMeta((), "r", datetime(2026, 1, 1), None, None, None, 1, 0)
    with pytest.raises(ValueError, match="UTC-aware"):
        encode(naive)


def test_utc_millis_truncates_to_wire_precision():
    moment = datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert utc_millis(moment).microsecond == 123000


def _evolved(filename: str, extra_field: dict) -> avro.schema.Schema:
    doc = json.loads((codec.resources.files("topcoins.schemas") / filename).read_text())
    doc["fields"].append(extra_field)
    return avro.schema.parse(json.dumps(doc))


NEW_FIELD = {"name": "market_cap_usd", "type": ["null", "double"], "default": None}


def test_a_newer_schema_with_an_optional_field_reads_old_messages():
    old_bytes = encode(RECORDS[2])
    newer = _evolved("top_coin.avsc", NEW_FIELD)
    reader = avro.io.DatumReader(codec.load_schema("top_coin.avsc"), newer)
    datum = reader.read(avro.io.BinaryDecoder(io.BytesIO(old_bytes[10:])))
    assert datum["market_cap_usd"] is None
    assert datum["symbol"] == "BTC"


def test_the_current_reader_reads_messages_of_a_newer_published_version(monkeypatch):
    newer = _evolved("top_coin.avsc", NEW_FIELD)
    buffer = io.BytesIO()
    datum = codec._to_avro(RECORDS[2]) | {"market_cap_usd": 1.2e12}
    avro.io.DatumWriter(newer).write(datum, avro.io.BinaryEncoder(buffer))
    message = codec.MAGIC + fingerprint_of(newer) + buffer.getvalue()
    with pytest.raises(DecodeError, match="unknown schema fingerprint"):
        decode(message)
    # Once the newer version is published, old code resolves it to the schema it knows.
    published = codec.published_schemas()
    monkeypatch.setattr(codec, "published_schemas", lambda: [*published, ("top_coin.v2", newer)])
    codec._bindings.cache_clear()
    try:
        assert decode(message) == RECORDS[2]
    finally:
        codec._bindings.cache_clear()
