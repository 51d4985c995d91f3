"""The join as a pure function: table-driven cases on real captures, then properties."""

from __future__ import annotations

import dataclasses
import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.streams.snapshots import (
    PRICE_TIME,
    RANK_TIME,
    cc_assets,
    prices_from_fixture,
    prices_of,
    quote,
    ranked,
    ranking_from_fixture,
    ranking_of,
)
from topcoins.domain import (
    AliasTable,
    ClaimConflict,
    DroppedAsset,
    DropReason,
    MatchRule,
    MissingAliasTarget,
    join_top_list,
    normalise_name,
)
from topcoins.schemas.records import PriceQuote, PriceSnapshot, RankedAsset, RankingSnapshot

ALIASES = AliasTable.load()
NO_ALIASES = AliasTable()

CC_2022 = "cc_mktcapfull_2022-09-21_page0.json"
CC_2020_VOL = "cc_totalvolfull_2020-05-04_page0_limit10.json"
CC_2020_CAP = "cc_mktcapfull_2020-05-04_page0_limit10.json"
CC_2024_LIGHT = "cc_totalvol_2024-05-14_page0.json"
CMC_2022 = "cmc_listings_2022-12-16.json"
CMC_2020 = "cmc_listings_2020-10-24.json"
CMC_2024 = "cmc_listings_2024-09-17T1600Z_limit20.json"


def row_of(result, symbol):
    matches = [row for row in result.rows if row.symbol == symbol]
    assert len(matches) == 1, f"{symbol} appears {len(matches)} times"
    return matches[0]


# --- every rule on the real captures --------------------------------------------------


@pytest.mark.parametrize(
    ("cc", "cmc", "symbol", "rule", "cmc_id"),
    [
        # exact: one CoinMarketCap asset with the symbol
        pytest.param(CC_2022, CMC_2022, "BTC", "exact", 1, id="btc-exact"),
        pytest.param(CC_2022, CMC_2022, "MIOTA", "exact", 1720, id="miota-both-providers"),
        pytest.param(CC_2022, CMC_2022, "FIL", "exact", 2280, id="filecoin-name-differs"),
        pytest.param(CC_2022, CMC_2022, "BNB", "exact", 1839, id="bnb"),
        pytest.param(CC_2020_VOL, CMC_2020, "BSV", "exact", 3602, id="2020-bsv"),
        pytest.param(CC_2020_VOL, CMC_2020, "XLM", "exact", 512, id="2020-xlm"),
        pytest.param(CC_2020_CAP, CMC_2020, "CRO", "exact", 3635, id="2020-cro"),
        # alias: LUNA vs LUNC across dates
        pytest.param(CC_2022, CMC_2022, "LUNC", "alias", 4172, id="lunc-2022-terra-classic"),
        pytest.param(CC_2022, CMC_2020, "LUNC", "alias", 4172, id="lunc-is-2020-cmc-luna"),
        pytest.param(CC_2022, CMC_2022, "LUNA", "unmatched", None, id="luna2-not-in-top100"),
        pytest.param(CC_2022, CMC_2020, "LUNA", "unmatched", None, id="luna2-never-old-terra"),
        # alias: TONCOIN is CoinMarketCap TON
        pytest.param(CC_2024_LIGHT, CMC_2024, "TONCOIN", "alias", 11419, id="toncoin-is-ton"),
        pytest.param(CC_2024_LIGHT, CMC_2024, "RNDR", "unmatched", None, id="rndr-not-listed"),
        pytest.param(CC_2024_LIGHT, CMC_2024, "MANTLE", "unmatched", None, id="mantle-not-listed"),
        # unmatched: not on CoinMarketCap, or no RAW block
        pytest.param(CC_2020_CAP, CMC_2020, "GAPS", "unmatched", None, id="gaps-unlisted"),
        pytest.param(CC_2020_CAP, CMC_2020, "HYN", "unmatched", None, id="hyn-unlisted"),
        pytest.param(CC_2020_CAP, CMC_2020, "PLF", "unmatched", None, id="plf-unlisted"),
        pytest.param(CC_2020_CAP, CMC_2020, "ELAMA", "unmatched", None, id="elama-unlisted"),
        pytest.param(CC_2022, CMC_2022, "CUSDC", "unmatched", None, id="cusdc-no-raw"),
        pytest.param(CC_2022, CMC_2022, "STETH", "unmatched", None, id="steth-beyond-top100"),
    ],
)
def test_rules_on_captures(cc, cmc, symbol, rule, cmc_id):
    prices = prices_from_fixture(cmc)
    result = join_top_list(ranking_from_fixture(cc), prices, ALIASES)

    row = row_of(result, symbol)
    assert (row.match_rule, row.cmc_id) == (rule, cmc_id)
    if cmc_id is None:
        assert row.price_usd is None
    else:
        source = [q for q in prices.quotes if q.cmc_id == cmc_id]
        assert row.price_usd == source[0].price_usd


def test_items_without_raw_keep_their_rank_and_have_no_volume():
    result = join_top_list(ranking_from_fixture(CC_2022), prices_from_fixture(CMC_2022), ALIASES)

    cusdc, evmos = row_of(result, "CUSDC"), row_of(result, "EVMOS")
    assert (cusdc.rank, cusdc.volume_24h_usd, cusdc.price_usd) == (73, None, None)
    assert (evmos.rank, evmos.volume_24h_usd, evmos.match_rule) == (86, None, "unmatched")


def test_missing_alias_target_is_reported_not_guessed():
    result = join_top_list(ranking_from_fixture(CC_2022), prices_from_fixture(CMC_2020), ALIASES)

    assert MissingAliasTarget("LUNA", "cmc_id 20314") in result.report.missing_alias_targets
    # CoinMarketCap 2020 still calls id 4172 "LUNA"; it is CryptoCompare's LUNC, priced once.
    assert [row.symbol for row in result.rows if row.cmc_id == 4172] == ["LUNC"]


def test_luna_of_2020_is_the_old_chain():
    old_luna = ranked(1, "LUNA", "Terra", cc_id="931668")

    result = join_top_list(ranking_of(old_luna), prices_from_fixture(CMC_2020), ALIASES)

    assert (result.rows[0].match_rule, result.rows[0].cmc_id) == ("alias", 4172)


@pytest.mark.parametrize(
    ("cmc", "rule", "cmc_id"),
    [
        pytest.param(CMC_2022, "alias", 16086, id="2022-bittorrent-new"),
        pytest.param(CMC_2020, "unmatched", None, id="2020-old-id-3718-not-used"),
    ],
)
def test_btt_follows_the_id_change(cmc, rule, cmc_id):
    btt = ranked(1, "BTT", "BitTorrent")

    result = join_top_list(ranking_of(btt), prices_from_fixture(cmc), ALIASES)

    assert (result.rows[0].match_rule, result.rows[0].cmc_id) == (rule, cmc_id)


@pytest.mark.parametrize(
    ("ranking", "expected"),
    [
        pytest.param(
            (ranked(1, "TON", "Tokamak Network", "555"), ranked(2, "TONCOIN", "The Open Network")),
            {"TON": ("unmatched", None), "TONCOIN": ("alias", 11419)},
            id="ton-ranked-above-toncoin",
        ),
        pytest.param(
            (ranked(1, "TON", "Tokamak Network", "555"),),
            {"TON": ("unmatched", None)},
            id="ton-alone-never-takes-toncoin",
        ),
    ],
)
def test_ton_and_toncoin(ranking, expected):
    result = join_top_list(ranking_of(*ranking), prices_from_fixture(CMC_2022), ALIASES)

    assert {row.symbol: (row.match_rule, row.cmc_id) for row in result.rows} == expected


# --- star, name and lowest-rank rules (the captures hold no shared symbol) ---------------

HOLO = quote(2682, "HOT", "Holo", rank=94, price=0.0016)
HYDRO = quote(90001, "HOT", "Hydro Protocol", rank=1500, price=0.00002)
HOTCOIN = quote(90002, "HOT", "HotCoin", rank=900, price=0.3)


ABC_ALIAS = AliasTable.from_mapping({"XYZ": "ABC"})


def case(case_id, quotes, *rows, aliases=NO_ALIASES):
    """A table row: the CoinMarketCap quotes, then each ranked CryptoCompare asset in rank
    order as (symbol, name, expected match_rule, expected cmc_id)."""
    return pytest.param(aliases, quotes, rows, id=case_id)


@pytest.mark.parametrize(
    ("aliases", "quotes", "rows"),
    [
        case(
            "star-after-pinned-plain",
            [HOLO, HYDRO],
            ("HOT", "Holo", "alias", 2682),
            ("HOT*", "Hydro Protocol", "star", 90001),
            aliases=ALIASES,
        ),
        case(
            "star-ranked-first-excludes-plain",
            [HYDRO, HOLO],
            ("HOT*", "Hydro Protocol", "star", 90001),
            ("HOT", "Holo", "symbol+name", 2682),
        ),
        case(
            "star-name-among-three",
            [HOLO, HOTCOIN, HYDRO],
            ("HOT*", "Hydro Protocol", "star+name", 90001),
        ),
        case(
            "star-lowest-rank-after-excluding-plain",
            [HOLO, HOTCOIN, HYDRO],
            ("HOT*", "Something Else", "star+lowest_rank", 90002),
        ),
        case(
            "star-without-second-asset",
            [HOLO],
            ("HOT", "Holo", "exact", 2682),
            ("HOT*", "Hydro Protocol", "unmatched", None),
        ),
        case("name-normalised", [HOTCOIN, HOLO, HYDRO], ("HOT", "HoLo ", "symbol+name", 2682)),
        case("lowest-rank", [HYDRO, HOTCOIN, HOLO], ("HOT", "Unknown", "symbol+lowest_rank", 2682)),
        case(
            "missing-rank-last-then-lowest-id",
            [quote(7, "ABC", "A"), quote(3, "ABC", "B"), quote(9, "ABC", "C", rank=50)],
            ("ABC", "Unknown", "symbol+lowest_rank", 9),
        ),
        case(
            "symbol-case-insensitive",
            [quote(28695, "weETH", "Wrapped eETH")],
            ("WEETH", "Wrapped eETH", "exact", 28695),
        ),
        case(
            "claimed-asset-skipped-next-candidate",
            [quote(1, "ABC", "Alpha", rank=1), quote(2, "ABC", "Beta", rank=2)],
            ("XYZ", "Alpha", "alias", 1),
            ("ABC", "Unknown", "symbol+lowest_rank", 2),
            aliases=ABC_ALIAS,
        ),
        case(
            "alias-claims-before-higher-ranked-symbol-row",
            [quote(1, "ABC", "Alpha", rank=1)],
            ("ABC", "Unknown", "unmatched", None),
            ("XYZ", "Alpha", "alias", 1),
            aliases=ABC_ALIAS,
        ),
    ],
)
def test_shared_symbol_rules(aliases, quotes, rows):
    ranking = ranking_of(*(ranked(i, row[0], row[1]) for i, row in enumerate(rows, start=1)))

    result = join_top_list(ranking, prices_of(*quotes), aliases)

    assert [(r.symbol, r.match_rule, r.cmc_id) for r in result.rows] == [
        (symbol, rule, cmc_id) for symbol, _, rule, cmc_id in rows
    ]


def test_claim_conflicts_are_reported():
    aliases = AliasTable.from_mapping({"XYZ": "ABC"})
    ranking = ranking_of(ranked(1, "XYZ", "Alpha"), ranked(2, "ABC", "Unknown"))

    result = join_top_list(ranking, prices_of(quote(1, "ABC", "Alpha", rank=1)), aliases)

    assert result.report.claim_conflicts == (ClaimConflict("ABC", 1, "XYZ"),)
    assert not result.report.clean


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("FileCoin", "filecoin"),
        ("Ordinals ", "ordinals"),
        ("Multi-Collateral DAI", "multicollateraldai"),
    ],
)
def test_normalise_name(name, normal):
    assert normalise_name(name) == normal


# --- ranking repair -------------------------------------------------------------------


def test_duplicates_across_pages_keep_the_first_and_renumber():
    page0 = cc_assets(CC_2022)
    # page 1 overlaps page 0 by its last three assets (the ranking moved between requests)
    page1 = tuple(dataclasses.replace(a, position=a.position + 3) for a in page0[-3:])
    ranking = ranking_of(*page0, *page1, depth=200, provider_total=741)

    result = join_top_list(ranking, prices_from_fixture(CMC_2022), ALIASES)

    assert [row.rank for row in result.rows] == list(range(1, 101))
    assert [row.symbol for row in result.rows] == [a.symbol for a in page0]
    assert [d.reason for d in result.report.dropped] == [DropReason.DUPLICATE_SYMBOL] * 3
    assert result.report.shortfall == 100


@pytest.mark.parametrize(
    ("assets", "symbols", "dropped"),
    [
        pytest.param(
            (ranked(1, "BTC", "Bitcoin", "1"), ranked(2, "ETH", "Ethereum", "2"),
             ranked(3, "BTC", "Bitcoin", "1")),
            ["BTC", "ETH"],
            [DroppedAsset(3, "BTC", "1", DropReason.DUPLICATE_SYMBOL)],
            id="same-symbol",
        ),
        pytest.param(
            (ranked(1, "LUNA", "Terra", "931668"), ranked(2, "LUNC", "Terra Classic", "931668")),
            ["LUNA"],
            [DroppedAsset(2, "LUNC", "931668", DropReason.DUPLICATE_CC_ID)],
            id="same-cc-id-renamed-between-pages",
        ),
        pytest.param(
            (ranked(1, "_meta", "x"), ranked(2, " ", "y"), ranked(3, "ETH", "Ethereum")),
            ["ETH"],
            [DroppedAsset(1, "_meta", None, DropReason.INVALID_SYMBOL),
             DroppedAsset(2, " ", None, DropReason.INVALID_SYMBOL)],
            id="reserved-and-blank-symbols",
        ),
    ],
)  # fmt: skip
def test_ranking_repair(assets, symbols, dropped):
    result = join_top_list(ranking_of(*assets, depth=10), prices_from_fixture(CMC_2022), ALIASES)

    assert [row.symbol for row in result.rows] == symbols
    assert [row.rank for row in result.rows] == list(range(1, len(symbols) + 1))
    assert list(result.report.dropped) == dropped


@pytest.mark.parametrize(
    ("depth", "provider_total", "rows", "beyond", "shortfall"),
    [
        pytest.param(10, 741, 10, 90, 0, id="cut-to-depth"),
        pytest.param(100, 741, 100, 0, 0, id="exactly-depth"),
        pytest.param(150, 741, 100, 0, 50, id="shortfall-provider-has-more"),
        pytest.param(150, 100, 100, 0, 0, id="provider-has-no-more"),
        pytest.param(150, 120, 100, 0, 20, id="shortfall-capped-by-provider-total"),
        pytest.param(150, None, 100, 0, 0, id="unknown-total-no-claim"),
    ],
)
def test_depth_and_shortfall(depth, provider_total, rows, beyond, shortfall):
    ranking = ranking_of(*cc_assets(CC_2022), depth=depth, provider_total=provider_total)

    result = join_top_list(ranking, prices_from_fixture(CMC_2022), ALIASES)

    assert len(result.rows) == rows
    assert (result.report.beyond_depth, result.report.shortfall) == (beyond, shortfall)
    assert result.meta.depth == depth


# --- prices edge cases ----------------------------------------------------------------


def test_no_price_snapshot_yet_keeps_every_rank_unpriced():
    result = join_top_list(ranking_from_fixture(CC_2020_VOL), None, ALIASES)

    assert [row.rank for row in result.rows] == list(range(1, 11))
    assert {(row.cmc_id, row.price_usd, row.match_rule) for row in result.rows} == {
        (None, None, "unmatched")
    }
    assert result.meta.pricing_snapshot_id is None
    assert result.meta.prices_fetched_at is None
    assert result.meta.unmatched == 10


def test_duplicate_cmc_id_uses_the_newest_entry_whatever_the_order():
    old = quote(1, "BTC", "Bitcoin", price=100.0, last_updated=PRICE_TIME - timedelta(minutes=5))
    new = quote(1, "BTC", "Bitcoin", price=101.0, last_updated=PRICE_TIME)
    ranking = ranking_of(ranked(1, "BTC", "Bitcoin"))

    forward = join_top_list(ranking, prices_of(old, new), ALIASES)
    backward = join_top_list(ranking, prices_of(new, old), ALIASES)

    assert forward == backward
    assert forward.rows[0].price_usd == 101.0
    assert forward.report.duplicate_cmc_ids == (1,)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 0.0, -0.0, -1.5, None])
def test_a_missing_or_unusable_price_is_null_but_matched(bad):
    ranking = ranking_of(ranked(1, "BTC", "Bitcoin"))

    result = join_top_list(ranking, prices_of(quote(1, "BTC", "Bitcoin", price=bad)), ALIASES)

    assert (result.rows[0].cmc_id, result.rows[0].price_usd) == (1, None)
    assert result.meta.unmatched == 1
    assert result.report.invalid_prices == (() if bad is None else (1,))
    assert result.report.clean is (bad is None)


def test_a_tiny_positive_price_is_kept():
    ranking = ranking_of(ranked(1, "PEPE", "Pepe"))
    prices = prices_of(quote(1, "PEPE", "Pepe", price=5e-324))

    result = join_top_list(ranking, prices, ALIASES)

    assert result.rows[0].price_usd == 5e-324
    assert result.report.invalid_prices == ()


def test_rows_carry_the_matched_quote_s_market_cap_and_24h_change():
    ranking = ranking_of(ranked(1, "BTC", "Bitcoin"), ranked(2, "GAPS", "Gaps"))
    btc = dataclasses.replace(
        quote(1, "BTC", "Bitcoin", price=100.0), market_cap_usd=2e12, percent_change_24h=-1.25
    )

    result = join_top_list(ranking, prices_of(btc), ALIASES)

    matched, unmatched = result.rows
    assert (matched.market_cap_usd, matched.percent_change_24h) == (2e12, -1.25)
    assert (unmatched.match_rule, unmatched.market_cap_usd, unmatched.percent_change_24h) == (
        "unmatched",
        None,
        None,
    )


def test_rows_and_meta_carry_provenance():
    ranking = ranking_from_fixture(CC_2020_VOL, snapshot_id="r-7")
    prices = prices_from_fixture(CMC_2020, snapshot_id="p-9")

    result = join_top_list(ranking, prices, ALIASES)

    row = result.rows[0]
    assert (row.rank_fetched_at, row.price_fetched_at) == (RANK_TIME, PRICE_TIME)
    assert (row.ranking_snapshot_id, row.pricing_snapshot_id) == ("r-7", "p-9")
    assert (row.symbol, row.name, row.volume_24h_usd) == ("BTC", "Bitcoin", 5736224004.504435)
    meta = result.meta
    assert meta.symbols == tuple(r.symbol for r in result.rows)
    assert (meta.ranking_snapshot_id, meta.pricing_snapshot_id) == ("r-7", "p-9")
    assert (meta.ranking_fetched_at, meta.prices_fetched_at) == (RANK_TIME, PRICE_TIME)
    assert (meta.provider_total, meta.depth, meta.unmatched) == (None, 10, 0)


# --- properties -----------------------------------------------------------------------

SYMBOLS = ["BTC", "ETH", "HOT", "HOT*", "TON", "TONCOIN", "LUNA", "LUNC", "BTT", "ABC", "ABC*"]
CMC_SYMBOLS = ["BTC", "HOT", "TON", "LUNA", "ABC", "hot", "ton"]
CMC_IDS = [*range(1, 40), 2682, 4172, 11419, 16086, 20314]
NAMES = ["Bitcoin", "Holo", "Hydro Protocol", "Toncoin", "Terra", "Alpha"]
MOMENT = datetime(2024, 5, 1, tzinfo=UTC)
moments = st.one_of(st.none(), st.integers(0, 600).map(lambda s: MOMENT + timedelta(seconds=s)))

ranked_assets = st.builds(
    RankedAsset,
    position=st.integers(1, 500),
    symbol=st.sampled_from([*SYMBOLS, "_meta", ""]),
    name=st.sampled_from(NAMES),
    cc_id=st.one_of(st.none(), st.sampled_from(["1", "2", "931668", "948819"])),
    volume_24h_usd=st.one_of(st.none(), st.floats(0, 1e12)),
)
price_quotes = st.builds(
    PriceQuote,
    cmc_id=st.sampled_from(CMC_IDS),
    symbol=st.sampled_from(CMC_SYMBOLS),
    name=st.sampled_from(NAMES),
    slug=st.just("slug"),
    cmc_rank=st.one_of(st.none(), st.integers(1, 50)),
    price_usd=st.one_of(st.none(), st.floats(1e-9, 1e6)),
    volume_24h_usd=st.none(),
    last_updated=moments,
)
rankings = st.builds(
    RankingSnapshot,
    snapshot_id=st.just("r"),
    fetched_at=st.just(RANK_TIME),
    depth=st.integers(0, 12),
    provider_total=st.one_of(st.none(), st.integers(0, 30)),
    assets=st.lists(ranked_assets, max_size=15).map(tuple),
)
price_snapshot = st.builds(
    PriceSnapshot,
    snapshot_id=st.just("p"),
    fetched_at=st.just(PRICE_TIME),
    total_count=st.none(),
    quotes=st.lists(price_quotes, min_size=3, max_size=30, unique_by=lambda q: q.cmc_id).map(tuple),
)
# one in four joins runs before the first price snapshot arrived
price_snapshots = st.one_of(st.none(), price_snapshot, price_snapshot, price_snapshot)
alias_tables = st.sampled_from(
    [NO_ALIASES, ALIASES, AliasTable.from_mapping({"ABC": 1, "HOT*": "HOT", "ETH": "BTC"})]
)


def expected_order(ranking: RankingSnapshot) -> list[str]:
    """First occurrence by symbol and by cc_id, valid symbols only, cut to depth."""
    seen_symbols, seen_ids, out = set(), set(), []
    for asset in ranking.assets:
        if not asset.symbol.strip() or asset.symbol == "_meta" or asset.symbol in seen_symbols:
            continue
        if asset.cc_id is not None and asset.cc_id in seen_ids:
            continue
        seen_symbols.add(asset.symbol)
        if asset.cc_id is not None:
            seen_ids.add(asset.cc_id)
        out.append(asset.symbol)
    return out[: ranking.depth]


@settings(max_examples=300, deadline=None)
@given(ranking=rankings, prices=price_snapshots, aliases=alias_tables)
def test_join_invariants(ranking, prices, aliases):
    result = join_top_list(ranking, prices, aliases)
    rows = result.rows

    assert [row.rank for row in rows] == list(range(1, len(rows) + 1))
    assert [row.symbol for row in rows] == expected_order(ranking)
    assert len({row.symbol for row in rows}) == len(rows)
    ids = [row.cmc_id for row in rows if row.cmc_id is not None]
    assert len(ids) == len(set(ids)), "one CoinMarketCap asset priced into two rows"
    by_id = {q.cmc_id: q for q in prices.quotes} if prices is not None else {}
    for row in rows:
        if row.cmc_id is None:
            assert row.price_usd is None and row.match_rule == "unmatched"
        else:
            assert row.price_usd == by_id[row.cmc_id].price_usd
            assert row.match_rule in {rule.value for rule in MatchRule} - {"unmatched"}
    assert result.meta.symbols == tuple(row.symbol for row in rows)
    assert result.meta.unmatched == sum(row.price_usd is None for row in rows)
    assert len(rows) <= max(ranking.depth, 0)


@settings(max_examples=200, deadline=None)
@given(ranking=rankings, prices=price_snapshots, aliases=alias_tables, seed=st.randoms())
def test_join_ignores_cmc_order_and_is_deterministic(ranking, prices, aliases, seed):
    first = join_top_list(ranking, prices, aliases)
    assert join_top_list(ranking, prices, aliases) == first
    if prices is not None:
        shuffled = list(prices.quotes)
        seed.shuffle(shuffled)
        reordered = dataclasses.replace(prices, quotes=tuple(shuffled))
        assert join_top_list(ranking, reordered, aliases) == first


def test_real_captures_do_not_depend_on_cmc_order():
    ranking = ranking_from_fixture(CC_2022)
    prices = prices_from_fixture(CMC_2022)
    shuffled = list(prices.quotes)
    random.Random(7).shuffle(shuffled)

    assert join_top_list(ranking, dataclasses.replace(prices, quotes=tuple(shuffled)), ALIASES) == (
        join_top_list(ranking, prices, ALIASES)
    )
