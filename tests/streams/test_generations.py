"""What a generation writes on the top topic (``streams/generations.py``): rows,
tombstones, then the meta, with their headers; all rows after a start, then only changes."""

from __future__ import annotations

import pytest

from tests.streams.worker_context import (
    MKTCAP_2020,
    PRICES_2020,
    VOLUME_2020,
    put,
    recover_published,
    table_rows,
)
from topcoins.schemas.topics import META_KEY
from topcoins.streams.faults import KillAfterRows
from topcoins.streams.tables import SnapshotKind
from topcoins.streams.updater import Outcome


async def test_symbols_that_leave_get_tombstones_between_rows_and_meta(worker, ranks, prices, top):
    await put(prices, PRICES_2020, b"coinmarketcap")
    await put(ranks, VOLUME_2020, b"cryptocompare")
    top.take()

    assert await put(ranks, MKTCAP_2020, b"cryptocompare") is Outcome.PUBLISHED

    sent = top.take()
    new_symbols = [a.symbol for a in MKTCAP_2020.assets]
    gone = ["BSV", "EOS", "ETC", "LTC", "TUSD", "XLM"]  # ranked by volume, not by market cap
    assert [key for key, _ in sent] == [*new_symbols, *gone, META_KEY]
    assert [value for key, value in sent if key in gone] == [None] * len(gone)
    assert set(table_rows(worker)) == set(new_symbols)
    assert sent[-1][1].unmatched == 4  # GAPS, HYN, PLF, ELAMA are not on CoinMarketCap


async def test_every_top_message_carries_its_generation_in_headers(worker, ranks, prices, top):
    await put(prices, PRICES_2020, b"coinmarketcap")
    await put(ranks, VOLUME_2020, b"cryptocompare")
    top.take()

    await put(ranks, MKTCAP_2020, b"cryptocompare")

    generation = {"producer": "stream-worker", "ranking_snapshot_id": "ranking-2"}
    generation["pricing_snapshot_id"] = PRICES_2020.snapshot_id
    keys = [key for key, _ in top.sent]
    by_key = dict(zip(keys, top.headers, strict=True))
    assert by_key["BTC"] == {**generation, "match_rule": "exact"}
    assert by_key["LTC"] == generation  # a tombstone: LTC left the list
    assert by_key[META_KEY] == generation


async def test_without_prices_the_pricing_header_is_absent(ranks, top):
    await put(ranks, VOLUME_2020, b"cryptocompare")

    assert top.headers[-1] == {"producer": "stream-worker", "ranking_snapshot_id": "ranking-1"}


async def test_rows_found_on_the_topic_at_start_are_tombstoned_unless_ranked(
    worker, ranks, prices, top
):
    # A crash mid-generation can leave rows on the topic that the recovered table lacks.
    worker.updater.writer.expect_rows({"ORPHAN", "BTC"})
    await put(prices, PRICES_2020, b"coinmarketcap")
    await put(ranks, VOLUME_2020, b"cryptocompare")

    sent = top.take()
    tombstones = [key for key, value in sent if value is None]
    assert tombstones == ["ORPHAN"]  # BTC is ranked: it gets a row, not a tombstone
    assert sent[-1][0] == META_KEY

    await put(ranks, MKTCAP_2020, b"cryptocompare")
    assert "ORPHAN" not in [key for key, value in top.take() if value is None]  # only once


@pytest.mark.parametrize("recovered_prices", [None, PRICES_2020], ids=["no prices", "prices"])
async def test_the_first_generation_after_a_start_rewrites_every_row(
    worker, ranks, top, recovered_prices
):
    # A worker killed mid-generation left rows of another generation on the topic; its
    # recovered table still holds the rows of the pair in force, so a meta written over
    # only the rows that differ from the table would close a mixed list.
    recover_published(worker, VOLUME_2020, recovered_prices)

    assert await put(ranks, VOLUME_2020, b"cryptocompare") is Outcome.DUPLICATE

    sent = top.take()
    assert [key for key, _ in sent] == [*(a.symbol for a in VOLUME_2020.assets), META_KEY]
    meta = sent[-1][1]
    assert {(row.ranking_snapshot_id, row.pricing_snapshot_id) for _, row in sent[:-1]} == {
        (meta.ranking_snapshot_id, meta.pricing_snapshot_id)
    }


async def test_later_generations_write_only_the_rows_that_changed(worker, ranks, top):
    await put(ranks, VOLUME_2020, b"cryptocompare")
    assert len(top.take()) == 11
    # The same pair again (what the pending path publishes): no row changed, meta only.
    await worker.updater._publish_in_force(SnapshotKind.RANKING)
    assert [key for key, _ in top.take()] == [META_KEY]


class Died(Exception):
    """Stands in for ``os._exit`` in the fault hook."""


@pytest.mark.parametrize(("generation", "rows"), [(1, 0), (1, 4), (2, 3), (2, 10)])
async def test_the_fault_hook_stops_after_k_delivered_rows_of_generation_g(
    worker, ranks, prices, top, monkeypatch, generation, rows
):
    def die(self) -> None:
        raise Died

    monkeypatch.setattr(KillAfterRows, "exit", die)
    worker.updater.writer.fault = KillAfterRows(generation=generation, rows=rows)
    outcomes = [
        await put(ranks, VOLUME_2020, b"cryptocompare"),
        await put(prices, PRICES_2020, b"coinmarketcap"),
    ]

    assert outcomes[generation - 1] is Outcome.FAILED  # what the agent saw: the hook raised
    assert outcomes[: generation - 1] == [Outcome.PUBLISHED] * (generation - 1)
    sent = top.take()
    whole = 11 * (generation - 1)
    assert [key for key, _ in sent[whole:]] == [a.symbol for a in VOLUME_2020.assets][:rows]
