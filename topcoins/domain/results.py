"""What a join returns: the rows in rank order, the generation's meta, and a report of
the repairs and compromises it made (``topcoins.domain.join``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from topcoins.schemas.records import TopCoin, TopListMeta

__all__ = [
    "ClaimConflict",
    "DropReason",
    "DroppedAsset",
    "JoinReport",
    "JoinResult",
    "MatchRule",
    "MissingAliasTarget",
]


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
