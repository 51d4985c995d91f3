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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from topcoins.schemas.prices import usable_price
from topcoins.schemas.records import (
    PriceQuote,
    PriceSnapshot,
    RankedAsset,
    RankingSnapshot,
    TopCoin,
    TopListMeta,
)
from topcoins.schemas.topics import META_KEY
from topcoins.streams.aliases import AliasEntry, AliasTable

__all__ = [
    "ClaimConflict",
    "DropReason",
    "DroppedAsset",
    "JoinReport",
    "JoinResult",
    "MatchRule",
    "MissingAliasTarget",
    "join_top_list",
    "normalise_name",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MatchRule(StrEnum):
    """The ``TopCoin.match_rule`` values, in the order the rules are tried."""

    ALIAS = "alias"
    EXACT = "exact"
    STAR = "star"
    STAR_NAME = "star+name"
    STAR_LOWEST_RANK = "star+lowest_rank"
    NAME = "symbol+name"
    LOWEST_RANK = "symbol+lowest_rank"
    UNMATCHED = "unmatched"


class DropReason(StrEnum):
    """Why a ranked asset was left out of the list."""

    DUPLICATE_SYMBOL = "duplicate_symbol"
    DUPLICATE_CC_ID = "duplicate_cc_id"
    INVALID_SYMBOL = "invalid_symbol"


@dataclass(frozen=True)
class DroppedAsset:
    """A ranked asset the repair left out, and why."""

    position: int
    symbol: str
    cc_id: str | None
    reason: DropReason


@dataclass(frozen=True)
class ClaimConflict:
    """``symbol`` wanted CoinMarketCap ``cmc_id``, already priced into ``held_by``'s row."""

    symbol: str
    cmc_id: int
    held_by: str


@dataclass(frozen=True)
class MissingAliasTarget:
    """An alias applied to ``symbol`` but its CoinMarketCap target is not in the snapshot."""

    symbol: str
    target: str


@dataclass(frozen=True)
class JoinReport:
    """The repairs and compromises one join made; empty when the inputs were clean."""

    dropped: tuple[DroppedAsset, ...] = ()
    beyond_depth: int = 0
    shortfall: int = 0
    missing_alias_targets: tuple[MissingAliasTarget, ...] = ()
    claim_conflicts: tuple[ClaimConflict, ...] = ()
    duplicate_cmc_ids: tuple[int, ...] = ()
    invalid_prices: tuple[int, ...] = ()  # matched cmc_ids whose price was 0, < 0 or not finite

    @property
    def clean(self) -> bool:
        """True when nothing was dropped, missing, conflicting, short or unusably priced."""
        return not (
            self.dropped
            or self.shortfall
            or self.missing_alias_targets
            or self.claim_conflicts
            or self.duplicate_cmc_ids
            or self.invalid_prices
        )


@dataclass(frozen=True)
class JoinResult:
    """The joined list: rows in rank order (1..N), the generation's meta, and the report."""

    rows: tuple[TopCoin, ...]
    meta: TopListMeta
    report: JoinReport = field(default_factory=JoinReport)


def normalise_name(name: str) -> str:
    """Casefold and keep only letters and digits: ``"FileCoin "`` -> ``"filecoin"``."""
    return "".join(ch for ch in name.casefold().strip() if ch.isalnum())


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

    index = _QuoteIndex.build(prices.quotes if prices is not None else ())
    matcher = _Matcher(index, aliases, ranked)
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


# --- CoinMarketCap index -----------------------------------------------------------------


def _symbol_key(symbol: str) -> str:
    return symbol.strip().casefold()


def _rank_order(quote: PriceQuote) -> tuple[bool, int, int]:
    """Tie-break order: lowest cmc_rank first, missing ranks last, then lowest id."""
    return (quote.cmc_rank is None, quote.cmc_rank or 0, quote.cmc_id)


def _freshness_order(quote: PriceQuote) -> tuple[float, tuple[bool, int, int], str]:
    """Which of several entries with one id to trust: newest, then best ranked, then any
    fixed order (repr) so that the choice never depends on the array order."""
    updated = quote.last_updated or _EPOCH
    return (-updated.timestamp(), _rank_order(quote), repr(quote))


@dataclass(frozen=True)
class _QuoteIndex:
    by_id: dict[int, PriceQuote]
    by_symbol: dict[str, tuple[PriceQuote, ...]]
    duplicate_ids: tuple[int, ...]

    @classmethod
    def build(cls, quotes: Iterable[PriceQuote]) -> _QuoteIndex:
        grouped: dict[int, list[PriceQuote]] = {}
        for quote in quotes:
            grouped.setdefault(quote.cmc_id, []).append(quote)
        # Most ids and symbols are unique: only a group of several needs its sort key.
        by_id = {
            cmc_id: group[0] if len(group) == 1 else min(group, key=_freshness_order)
            for cmc_id, group in grouped.items()
        }
        by_symbol: dict[str, list[PriceQuote]] = {}
        for quote in by_id.values():
            by_symbol.setdefault(_symbol_key(quote.symbol), []).append(quote)
        return cls(
            by_id=by_id,
            by_symbol={
                k: (v[0],) if len(v) == 1 else tuple(sorted(v, key=_rank_order))
                for k, v in by_symbol.items()
            },
            duplicate_ids=tuple(sorted(i for i, group in grouped.items() if len(group) > 1)),
        )

    def with_symbol(self, symbol: str) -> tuple[PriceQuote, ...]:
        return self.by_symbol.get(_symbol_key(symbol), ())


# --- matching ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Match:
    rule: MatchRule
    quote: PriceQuote | None = None


_UNMATCHED = _Match(MatchRule.UNMATCHED)


def _tie_break(candidates: Sequence[PriceQuote], cc_name: str | None) -> list[PriceQuote]:
    """Candidates in preference order: name matches first, each group by lowest rank."""
    wanted = normalise_name(cc_name) if cc_name is not None else None
    return sorted(candidates, key=lambda q: (normalise_name(q.name) != wanted, *_rank_order(q)))


class _Matcher:
    """Resolves rows to CoinMarketCap quotes, tracking which ids are already priced."""

    def __init__(self, index: _QuoteIndex, aliases: AliasTable, ranked: list[RankedAsset]) -> None:
        self.index = index
        self.aliases = aliases
        self.reserved = aliases.reserved_cmc_ids
        self.ranked_by_symbol = {asset.symbol: asset for asset in ranked}
        self.claimed: dict[int, str] = {}
        self.conflicts: list[ClaimConflict] = []
        self.missing_alias_targets: list[MissingAliasTarget] = []

    def match_all(self, listed: Sequence[RankedAsset]) -> list[_Match]:
        matches: list[_Match | None] = [None] * len(listed)
        # Alias rows claim first, so a symbol rule cannot take an aliased asset.
        for i, asset in enumerate(listed):
            entry = self.aliases.lookup(asset.symbol, asset.cc_id)
            if entry is not None:
                matches[i] = self._by_alias(asset, entry)
        for i, asset in enumerate(listed):
            if matches[i] is None:
                matches[i] = self._by_symbol(asset)
        return [m if m is not None else _UNMATCHED for m in matches]

    def _claim(
        self,
        asset: RankedAsset,
        ordered: Sequence[PriceQuote],
        rule_for: Callable[[PriceQuote], MatchRule],
    ) -> _Match:
        """The first candidate no earlier row holds; every held one is a reported conflict."""
        for quote in ordered:
            holder = self.claimed.get(quote.cmc_id)
            if holder is None:
                self.claimed[quote.cmc_id] = asset.symbol
                return _Match(rule_for(quote), quote)
            self.conflicts.append(ClaimConflict(asset.symbol, quote.cmc_id, holder))
        return _UNMATCHED

    def _by_alias(self, asset: RankedAsset, entry: AliasEntry) -> _Match:
        if entry.cmc_id is not None:
            quote = self.index.by_id.get(entry.cmc_id)
            target = f"cmc_id {entry.cmc_id}"
            ordered = [quote] if quote is not None else []
        else:
            assert entry.cmc_symbol is not None
            target = f"cmc_symbol {entry.cmc_symbol}"
            candidates = [
                q for q in self.index.with_symbol(entry.cmc_symbol) if q.cmc_id not in self.reserved
            ]
            ordered = _tie_break(candidates, asset.name)
        if not ordered:
            self.missing_alias_targets.append(MissingAliasTarget(asset.symbol, target))
            return _UNMATCHED
        return self._claim(asset, ordered, lambda _: MatchRule.ALIAS)

    def _by_symbol(self, asset: RankedAsset) -> _Match:
        star = asset.symbol.endswith("*") and asset.symbol.rstrip("*") != ""
        base = asset.symbol.rstrip("*") if star else asset.symbol
        candidates = [q for q in self.index.with_symbol(base) if q.cmc_id not in self.reserved]
        if star:
            taken = self._plain_resolution(base)
            candidates = [q for q in candidates if q.cmc_id != taken]
        if not candidates:
            return _UNMATCHED
        wanted = normalise_name(asset.name)

        def rule_for(quote: PriceQuote) -> MatchRule:
            if len(candidates) == 1:
                return MatchRule.STAR if star else MatchRule.EXACT
            if normalise_name(quote.name) == wanted:
                return MatchRule.STAR_NAME if star else MatchRule.NAME
            return MatchRule.STAR_LOWEST_RANK if star else MatchRule.LOWEST_RANK

        return self._claim(asset, _tie_break(candidates, asset.name), rule_for)

    def _plain_resolution(self, base: str) -> int | None:
        """The CoinMarketCap id the plain symbol stands for, independent of claims."""
        plain = self.ranked_by_symbol.get(base)
        entry = self.aliases.lookup(base, plain.cc_id if plain is not None else None)
        if entry is not None and entry.cmc_id is not None:
            return entry.cmc_id
        symbol = entry.cmc_symbol if entry is not None and entry.cmc_symbol else base
        candidates = [q for q in self.index.with_symbol(symbol) if q.cmc_id not in self.reserved]
        if not candidates:
            return None
        return _tie_break(candidates, plain.name if plain is not None else None)[0].cmc_id


def _row(
    rank: int,
    asset: RankedAsset,
    match: _Match,
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
