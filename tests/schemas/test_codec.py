import dataclasses
import io
import json
from datetime import UTC, datetime

import avro.io
import avro.schema
import pytest

from tests.schemas.test_codec_identity import avro_datum
from topcoins.schemas import codec, versions
from topcoins.schemas.codec import (
    DecodeError,
    EncodeError,
    decode,
    decode_as,
    encode,
    fingerprint_of,
)
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
    schema = versions.current_schema(type(record))
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


def _top_coin_doc() -> dict:
    return json.loads(str(versions.current_schema(TopCoin)))


def _evolved(extra_field: dict) -> avro.schema.Schema:
    doc = _top_coin_doc()
    doc["fields"].append(extra_field)
    return avro.schema.parse(json.dumps(doc))


NEW_FIELD = {"name": "circulating_supply", "type": ["null", "double"], "default": None}


def test_a_newer_schema_with_an_optional_field_reads_old_messages():
    old_bytes = encode(RECORDS[2])
    newer = _evolved(NEW_FIELD)
    reader = avro.io.DatumReader(versions.current_schema(TopCoin), newer)
    datum = reader.read(avro.io.BinaryDecoder(io.BytesIO(old_bytes[10:])))
    assert datum["circulating_supply"] is None
    assert datum["symbol"] == "BTC"


def test_the_current_reader_reads_messages_of_a_newer_published_version(monkeypatch):
    newer = _evolved(NEW_FIELD)
    buffer = io.BytesIO()
    datum = avro_datum(RECORDS[2]) | {"circulating_supply": 1.9e7}
    avro.io.DatumWriter(newer).write(datum, avro.io.BinaryEncoder(buffer))
    message = codec.MAGIC + fingerprint_of(newer) + buffer.getvalue()
    with pytest.raises(DecodeError, match="unknown schema fingerprint"):
        decode(message)
    # Once the newer version is published, old code resolves it to the schema it knows.
    published = versions.published_schemas()
    monkeypatch.setattr(versions, "published_schemas", lambda: [*published, ("top_coin.v9", newer)])
    codec._bindings.cache_clear()
    try:
        assert decode(message) == RECORDS[2]
    finally:
        codec._bindings.cache_clear()


def _older(drop: str) -> avro.schema.Schema:
    doc = _top_coin_doc()
    doc["fields"] = [field for field in doc["fields"] if field["name"] != drop]
    return avro.schema.parse(json.dumps(doc))


def test_messages_of_an_older_published_version_get_the_new_field_s_default(monkeypatch):
    older = _older("pricing_snapshot_id")
    datum = avro_datum(RECORDS[2])
    del datum["pricing_snapshot_id"]
    buffer = io.BytesIO()
    avro.io.DatumWriter(older).write(datum, avro.io.BinaryEncoder(buffer))
    message = codec.MAGIC + fingerprint_of(older) + buffer.getvalue()
    published = versions.published_schemas()
    monkeypatch.setattr(versions, "published_schemas", lambda: [("top_coin.v0", older), *published])
    codec._bindings.cache_clear()
    try:
        assert decode(message) == dataclasses.replace(RECORDS[2], pricing_snapshot_id=None)
    finally:
        codec._bindings.cache_clear()


def _with_body(record, body: bytes) -> bytes:
    return encode(record)[:10] + body


def _long(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag > 0x7F:
        out.append(zigzag & 0x7F | 0x80)
        zigzag >>= 7
    return bytes(out) + bytes([zigzag])


def _string(text: str) -> bytes:
    return _long(len(text.encode())) + text.encode()


def _meta_body(ranking_fetched_at_ms: int) -> bytes:
    """A valid TopListMeta body: no symbols, then the given ``ranking_fetched_at``."""
    return b"\x00" + _string("r") + _long(ranking_fetched_at_ms) + b"\x00\x00\x00\x02\x00"


def test_the_hand_built_body_decodes():
    meta = decode(_with_body(RECORDS[5], _meta_body(1_700_000_000_123)))
    assert meta.ranking_fetched_at == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    "millis",
    [10**15, -(10**15), 2**63 - 1, -(2**63)],
    ids=["year-33658", "before-year-1", "max-long", "min-long"],
)
def test_a_timestamp_python_cannot_represent_is_a_decode_error(millis):
    with pytest.raises(DecodeError, match="TopListMeta"):
        decode(_with_body(RECORDS[5], _meta_body(millis)))


@pytest.mark.parametrize(
    "body",
    [
        b"\x05",  # a negative array block count whose block size is missing
        b"\x00" + _long(2**62) + b"r",  # a string longer than the message
        b"\x00" + _string("r") + _long(0) + b"\x06",  # union branch 3 of a 2-branch union
        b"\x00" + _string("r") + _long(0) + b"\x00\x00\x00\x02\x00" + b"extra",
        b"\x00" + b"\x01\xff",  # a string of length -1
        b"\x00" + _long(2) + b"\xc3\x28" + _long(0) + b"\x00\x00\x00\x02\x00",  # not UTF-8
        b"\xff" * 20,  # an overlong varint
    ],
    ids=["block-size", "long-string", "union-index", "trailing", "negative", "utf8", "varint"],
)
def test_malformed_bodies_are_decode_errors(body):
    with pytest.raises(DecodeError):
        decode(_with_body(RECORDS[5], body))


def test_a_writer_computing_the_fingerprint_by_the_letter_of_the_specification_is_understood():
    # The avro package keeps {"type":"long"} for timestamp-millis in the canonical form; the
    # specification (and Java, fastavro) write "long", which gives another fingerprint.
    import fastavro.schema

    schema = versions.current_schema(TopCoin)
    canonical = fastavro.schema.to_parsing_canonical_form(
        fastavro.parse_schema(json.loads(str(schema)))
    )
    by_the_letter = bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))
    assert by_the_letter != fingerprint_of(schema)
    message = codec.MAGIC + by_the_letter + encode(RECORDS[2])[10:]
    assert decode(message) == RECORDS[2]


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (dataclasses.replace(RECORDS[2], rank=2.5), "rank"),
        (dataclasses.replace(RECORDS[2], rank=2**63), "too large"),
        (dataclasses.replace(RECORDS[2], price_usd="1.5"), "price_usd"),
        (dataclasses.replace(RECORDS[2], symbol=None), "symbol"),
        (dataclasses.replace(RECORDS[2], name="\ud800"), "surrogates"),
    ],
    ids=["float-in-long", "long-overflow", "string-in-double", "null", "surrogate"],
)
def test_a_record_that_does_not_fit_its_schema_is_an_encode_error(record, why):
    with pytest.raises(EncodeError, match=why):
        encode(record)


def test_encode_refuses_what_is_not_a_record():
    with pytest.raises(TypeError, match="not a topcoins record"):
        encode(object())


def test_market_cap_and_24h_change_travel_in_version_2_and_default_to_none_from_version_1():
    quote = PriceQuote(1, "BTC", "Bitcoin", "bitcoin", 1, 58216.51, 2.1e10, NOW, 1.1e12, -2.5)
    snapshot = PriceSnapshot("p1", NOW, 1, (quote,))
    assert decode(encode(snapshot)) == snapshot
    row = dataclasses.replace(RECORDS[2], market_cap_usd=1.1e12, percent_change_24h=-2.5)
    assert decode(encode(row)) == row
    v1 = versions.load_schema("top_coin.v1.avsc")
    datum = {k: v for k, v in avro_datum(row).items() if k in {f.name for f in v1.fields}}
    buffer = io.BytesIO()
    avro.io.DatumWriter(v1).write(datum, avro.io.BinaryEncoder(buffer))
    old = decode(codec.MAGIC + fingerprint_of(v1) + buffer.getvalue())
    assert (old.market_cap_usd, old.percent_change_24h) == (None, None)
    assert old == RECORDS[2]
