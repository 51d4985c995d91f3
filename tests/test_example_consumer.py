"""scripts/example_consumer.py: the service's number format, a clean error without a broker."""

import importlib.util
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import generations
from topcoins.brokers import free_port
from topcoins.formats import format_number

PATH = Path(__file__).resolve().parent.parent / "scripts" / "example_consumer.py"
spec = importlib.util.spec_from_file_location("example_consumer", PATH)
assert spec is not None and spec.loader is not None
consumer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(consumer)


def test_prices_are_printed_without_an_exponent():
    assert consumer.format_number(1.0404351e-05) == "0.000010404351"
    assert consumer.format_number(67000.0) == "67000.0"
    assert consumer.format_number(1e22) == "10000000000000000000000.0"


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_the_number_text_is_the_services(value):
    assert consumer.format_number(value) == format_number(value)
    assert float(consumer.format_number(value)) == value


def test_an_unreachable_broker_is_one_line_on_stderr(monkeypatch, capsys):
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setattr(sys, "argv", ["example_consumer.py", "--bootstrap", address])
    assert consumer.main() == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"example_consumer: cannot reach a Kafka broker at {address}: is it running? "
        "(`topcoins dev` prints its address as export KAFKA_BOOTSTRAP_SERVERS=...)"
    ]


@pytest.mark.parametrize("case", generations.CASES, ids=lambda case: case.name)
def test_a_meta_whose_rows_mix_generations_is_ignored(case):
    readers = consumer.load_readers(consumer.SCHEMAS)
    rows: dict[str, dict] = {}
    seen = []
    for key, value in case.messages:
        if value is None:
            rows.pop(key.decode(), None)
            continue
        name, record = consumer.decode(value, readers)
        if name == "TopCoin":
            rows[key.decode()] = record
            continue
        listed = consumer.listed_rows(record, rows)
        if listed is None:
            seen.append(generations.REFUSED)
        else:
            assert {row["ranking_snapshot_id"] for row in listed} == {record["ranking_snapshot_id"]}
            seen.append(record["ranking_snapshot_id"])
    assert seen == case.at_metas
