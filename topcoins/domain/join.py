"""Joins the CryptoCompare ranking with CoinMarketCap prices: a pure, deterministic function.

``join_top_list(ranking, prices, aliases)`` reads nothing but its arguments (no clock, no
I/O) and gives the same answer for the same inputs, whatever the order of the CoinMarketCap
array.

**Ranking repair** (before matching). Assets are taken in provider order (the order of
``ranking.assets``: all pages, in order). An asset whose symbol or ``cc_id`` was already
seen is dropped (the first occurrence wins), as is one with an empty symbol or the reserved
``_meta`` key. The rest is cut to ``ranking.depth`` and ranked 1..N without gaps. If fewer
than ``depth`` remain while the provider says it ranks more, the shortfall is reported; no
row is ever invented.

**Matching** (each row records the rule in ``TopCoin.match_rule``), in this order:

1. ``alias``: the alias table names the CoinMarketCap asset (by id, or by symbol with the
   tie-break below). An alias is authoritative: if its target is not in the price snapshot
   (or an earlier alias row took it), the row stays unmatched; it never falls back to a
   symbol rule. A CoinMarketCap id named anywhere in the alias table is *reserved*: the
   symbol rules below never pick it.
2. ``exact``: exactly one CoinMarketCap asset has the row's symbol.
3. ``star``: a CryptoCompare symbol ending in ``*`` (``HOT*``) is a second asset that shares
   the plain symbol. The ``*`` is stripped and the asset the plain symbol resolves to (alias,
   else the tie-break with the plain row's name) is excluded; ``star`` when one candidate is
   left, else ``star+name`` / ``star+lowest_rank`` by the tie-break.
4. ``symbol+name``: several CoinMarketCap assets share the symbol; the one whose normalised
   name (casefold, drop non-alphanumerics) equals the CryptoCompare FullName's.
5. ``symbol+lowest_rank``: otherwise the lowest ``cmc_rank`` (missing ranks last, then the
   lowest id).
6. ``unmatched``: no CoinMarketCap asset; ``cmc_id`` and ``price_usd`` are None.

Symbols are compared case-insensitively (CoinMarketCap writes ``weETH``, CryptoCompare
``WEETH``); the served symbol is always CryptoCompare's.

**One asset, one row.** A CoinMarketCap id is priced into at most one row. Alias rows claim
first (in rank order), then the other rows in rank order. When a symbol rule's pick is
already claimed, the row *takes the next candidate* of the same tie-break (the claimed asset
demonstrably belongs to another ranked row), else it is unmatched; ``match_rule`` names the
rule that picked the asset actually used. Every conflict is listed in the report.

A matched row's ``price_usd`` is exactly the ``price_usd`` of the CoinMarketCap entry named
by ``cmc_id``, or None when that entry has no usable price: ``usable_price`` (finite and
greater than 0, ``schemas/prices.py``) is the rule; each nulled price is listed in the
report (``invalid_prices``). If one id appears twice in the
snapshot, the entry with the newest ``last_updated`` (then lowest rank) is used.
"""

from __future__ import annotations

from collections.abc import Sequence

from topcoins.domain.aliases import AliasTable
from topcoins.domain.matching import Match, Matcher, QuoteIndex
from topcoins.domain.results import (
    DroppedAsset,
    DropReason,
    JoinReport,
    JoinResult,
)
from topcoins.schemas.prices import usable_price
from topcoins.schemas.records import (
    PriceSnapshot,
    RankedAsset,
    RankingSnapshot,
    TopCoin,
    TopListMeta,
)
from topcoins.schemas.topics import META_KEY

__all__ = ["join_top_list"]


def join_top_list(
    ranking: RankingSnapshot, prices: PriceSnapshot | None, aliases: AliasTable
) -> JoinResult:
    """Join one ranking with one price snapshot (or none yet) into the served top list."""
    ranked, dropped = _dedupe(ranking.assets)
    depth = max(ranking.depth, 0)
    listed = ranked[:depth]
    shortfall = 0
    if ranking.provider_total is not None and len(listed) < depth:
        shortfall = max(0, min(depth, ranking.provider_total) - len(listed))

    index = QuoteIndex.build(prices.quotes if prices is not None else ())
    matcher = Matcher(index, aliases, ranked)
    matches = matcher.match_all(listed)

    rows = tuple(
        _row(rank, asset, match, ranking, prices)
        for rank, (asset, match) in enumerate(zip(listed, matches, strict=True), start=1)
    )
    meta = TopListMeta(
        symbols=tuple(row.symbol for row in rows),
        ranking_snapshot_id=ranking.snapshot_id,
        ranking_fetched_at=ranking.fetched_at,
        pricing_snapshot_id=prices.snapshot_id if prices is not None else None,
        prices_fetched_at=prices.fetched_at if prices is not None else None,
        provider_total=ranking.provider_total,
        depth=ranking.depth,
        unmatched=sum(1 for row in rows if row.price_usd is None),
    )
    report = JoinReport(
        dropped=dropped,
        beyond_depth=len(ranked) - len(listed),
        shortfall=shortfall,
        missing_alias_targets=tuple(matcher.missing_alias_targets),
        claim_conflicts=tuple(matcher.conflicts),
        duplicate_cmc_ids=index.duplicate_ids,
        invalid_prices=tuple(
            match.quote.cmc_id
            for match in matches
            if match.quote is not None
            and match.quote.price_usd is not None
            and usable_price(match.quote.price_usd) is None
        ),
    )
    return JoinResult(rows=rows, meta=meta, report=report)


# --- ranking repair ----------------------------------------------------------------------


def _dedupe(assets: Sequence[RankedAsset]) -> tuple[list[RankedAsset], tuple[DroppedAsset, ...]]:
    kept: list[RankedAsset] = []
    dropped: list[DroppedAsset] = []
    symbols: set[str] = set()
    cc_ids: set[str] = set()
    for asset in assets:
        reason: DropReason | None = None
        if not asset.symbol.strip() or asset.symbol == META_KEY:
            reason = DropReason.INVALID_SYMBOL
        elif asset.symbol in symbols:
            reason = DropReason.DUPLICATE_SYMBOL
        elif asset.cc_id is not None and asset.cc_id in cc_ids:
            reason = DropReason.DUPLICATE_CC_ID
        if reason is not None:
            dropped.append(DroppedAsset(asset.position, asset.symbol, asset.cc_id, reason))
            continue
        symbols.add(asset.symbol)
        if asset.cc_id is not None:
            cc_ids.add(asset.cc_id)
        kept.append(asset)
    return kept, tuple(dropped)


def _row(
    rank: int,
    asset: RankedAsset,
    match: Match,
    ranking: RankingSnapshot,
    prices: PriceSnapshot | None,
) -> TopCoin:
    quote = match.quote
    price = usable_price(quote.price_usd) if quote is not None else None
    return TopCoin(
        rank=rank,
        symbol=asset.symbol,
        name=asset.name,
        cmc_id=quote.cmc_id if quote is not None else None,
        price_usd=price,
        match_rule=match.rule.value,
        volume_24h_usd=asset.volume_24h_usd,
        rank_fetched_at=ranking.fetched_at,
        price_fetched_at=prices.fetched_at if prices is not None else None,
        ranking_snapshot_id=ranking.snapshot_id,
        pricing_snapshot_id=prices.snapshot_id if prices is not None else None,
        market_cap_usd=quote.market_cap_usd if quote is not None else None,
        percent_change_24h=quote.percent_change_24h if quote is not None else None,
    )
