from topcoins.emulator.universe import CC_RANKED, CC_TO_CMC, CMC_LISTED, build_universe


def test_sizes():
    universe = build_universe(42)
    assert len(universe.by_cc_symbol) == CC_RANKED >= 400
    assert len(universe.by_cmc_id) == CMC_LISTED >= 600


def test_same_seed_same_universe_other_seed_other_synthetics():
    one, two = build_universe(1), build_universe(2)
    assert [a.key for a in one] == [a.key for a in build_universe(1)]
    assert {a.key for a in one if a.synthetic} != {a.key for a in two if a.synthetic}
    assert {a.key for a in one if not a.synthetic} == {a.key for a in two if not a.synthetic}


def test_real_assets_keep_their_recorded_values(fixture_json):
    universe = build_universe(42)
    for item in fixture_json("cmc_listings_2022-12-16.json")["data"]:
        asset = universe.by_cmc_id[item["id"]]
        assert asset.cmc_listing["symbol"] == item["symbol"]
        assert asset.cmc_listing["slug"] == item["slug"]
        assert asset.price_usd == item["quote"]["USD"]["price"]
    btc = universe.by_cc_symbol["BTC"]
    assert (btc.cc_info["Id"], btc.cmc_id) == ("1182", 1)


def test_toncoin_is_cmc_ton():
    universe = build_universe(42)
    toncoin = universe.by_cc_symbol["TONCOIN"]
    assert toncoin.name == "The Open Network"
    assert (toncoin.cmc_id, toncoin.cmc_listing["symbol"]) == (11419, "TON")
    assert toncoin.cmc_listing["name"] == "Toncoin"
    assert "TON" not in universe.by_cc_symbol


def test_two_cmc_assets_share_hot():
    universe = build_universe(42)
    hot = [a for a in universe.by_cmc_id.values() if a.cmc_listing["symbol"] == "HOT"]
    assert {(a.cmc_id, a.cmc_listing["slug"], a.cc_symbol) for a in hot} == {
        (2682, "holo", "HOT"),  # the 2022-12 capture's slug
        (2467, "hydro-protocol", "HOT*"),
    }


def test_ranked_assets_without_a_cmc_listing():
    universe = build_universe(42)
    for symbol in ("GAPS", "HYN", "PLF", "ELAMA"):
        asset = universe.by_cc_symbol[symbol]
        assert asset.cmc_id is None and asset.cc_quoted
    unlisted = {s for s, cmc_id in universe.cc_to_cmc().items() if cmc_id is None}
    assert unlisted == {"GAPS", "HYN", "PLF", "ELAMA"}


def test_items_without_raw():
    universe = build_universe(42)
    assert {a.cc_symbol for a in universe if a.cc_info and not a.cc_quoted} == {"CUSDC", "EVMOS"}


def test_mapping_is_ground_truth():
    universe = build_universe(42)
    mapping = universe.cc_to_cmc()
    assert len(mapping) == len(universe.by_cc_symbol)
    for symbol, cmc_id in CC_TO_CMC.items():
        assert mapping[symbol] == cmc_id
    assert mapping["LUNC"] == 4172  # CMC id 4172 was "LUNA" until 2022
    assert mapping["LUNA"] == 20314  # CryptoCompare's LUNA is Terra 2.0
    assert mapping["BTT"] == 16086
    assert universe.by_cmc_id[27075].cmc_listing["symbol"] == "MNT"
    assert universe.by_cmc_id[5690].cmc_listing["symbol"] == "RENDER"
    listed = [cmc_id for cmc_id in mapping.values() if cmc_id is not None]
    assert len(listed) == len(set(listed))


def test_keys_and_symbols_are_unique():
    universe = build_universe(42)
    assert len(universe.by_key) == len(universe.assets)
    assert len({a.cc_info["Id"] for a in universe if a.cc_info}) == len(universe.by_cc_symbol)


def test_sizes_can_grow():
    universe = build_universe(42, cc_ranked=1000, cmc_listed=5000)
    assert (len(universe.by_cc_symbol), len(universe.by_cmc_id)) == (1000, 5000)
    assert len({a.key for a in universe}) == len(universe.assets)
