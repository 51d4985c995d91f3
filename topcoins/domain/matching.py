"""Resolves ranked CryptoCompare assets to CoinMarketCap quotes: the matching rules of
``topcoins.domain.join`` (alias, exact, star, name, lowest rank), one asset per row."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from topcoins.domain.aliases import AliasEntry, AliasTable
from topcoins.domain.results import ClaimConflict, MatchRule, MissingAliasTarget
from topcoins.schemas.records import PriceQuote, RankedAsset

__all__ = ["Match", "Matcher", "QuoteIndex", "normalise_name"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def normalise_name(name: str) -> str:
    """Casefold and keep only letters and digits: ``"FileCoin "`` -> ``"filecoin"``."""
    return "".join(ch for ch in name.casefold().strip() if ch.isalnum())


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
class QuoteIndex:
    """A price snapshot's quotes by id (one per id: the freshest) and by symbol (in
    tie-break order)."""

    by_id: dict[int, PriceQuote]
    by_symbol: dict[str, tuple[PriceQuote, ...]]
    duplicate_ids: tuple[int, ...]

    @classmethod
    def build(cls, quotes: Iterable[PriceQuote]) -> QuoteIndex:
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


@dataclass(frozen=True)
class Match:
    """The rule that matched a row, and the quote it priced the row with (None: unmatched)."""

    rule: MatchRule
    quote: PriceQuote | None = None


_UNMATCHED = Match(MatchRule.UNMATCHED)


def _tie_break(candidates: Sequence[PriceQuote], cc_name: str | None) -> list[PriceQuote]:
    """Candidates in preference order: name matches first, each group by lowest rank."""
    wanted = normalise_name(cc_name) if cc_name is not None else None
    return sorted(candidates, key=lambda q: (normalise_name(q.name) != wanted, *_rank_order(q)))


class Matcher:
    """Resolves rows to CoinMarketCap quotes, tracking which ids are already priced."""

    def __init__(self, index: QuoteIndex, aliases: AliasTable, ranked: list[RankedAsset]) -> None:
        self.index = index
        self.aliases = aliases
        self.reserved = aliases.reserved_cmc_ids
        self.ranked_by_symbol = {asset.symbol: asset for asset in ranked}
        self.claimed: dict[int, str] = {}
        self.conflicts: list[ClaimConflict] = []
        self.missing_alias_targets: list[MissingAliasTarget] = []

    def match_all(self, listed: Sequence[RankedAsset]) -> list[Match]:
        matches: list[Match | None] = [None] * len(listed)
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
    ) -> Match:
        """The first candidate no earlier row holds; every held one is a reported conflict."""
        for quote in ordered:
            holder = self.claimed.get(quote.cmc_id)
            if holder is None:
                self.claimed[quote.cmc_id] = asset.symbol
                return Match(rule_for(quote), quote)
            self.conflicts.append(ClaimConflict(asset.symbol, quote.cmc_id, holder))
        return _UNMATCHED

    def _by_alias(self, asset: RankedAsset, entry: AliasEntry) -> Match:
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

    def _by_symbol(self, asset: RankedAsset) -> Match:
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
