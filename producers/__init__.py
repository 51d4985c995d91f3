"""The producers: poll CoinMarketCap and CryptoCompare, publish each snapshot to Kafka.

``run_pricing`` and ``run_ranking`` (in ``topcoins.producers.main``) are the process
entry points; the clients, the pacing (``budget``, ``ratelimit``), the poll loop, the
status reporter and the publisher are usable on their own.
"""

from topcoins.producers.budget import (
    BudgetError,
    CreditLedger,
    CreditPlan,
    PricingBudget,
    plan_pricing,
)
from topcoins.producers.coinmarketcap import CoinMarketCapClient
from topcoins.producers.cryptocompare import CryptoCompareClient
from topcoins.producers.errors import (
    AuthError,
    BadResponseError,
    LocalLimitError,
    ParameterError,
    RateLimitError,
    RateLimitUsage,
    ServerError,
    UpstreamError,
    UpstreamTimeout,
)
from topcoins.producers.main import run_pricing, run_ranking
from topcoins.producers.poller import Poller
from topcoins.producers.pricing import PriceSnapshotFetcher
from topcoins.producers.publisher import SnapshotPublisher
from topcoins.producers.ranked_ids import RankedIdsReader
from topcoins.producers.ratelimit import Pacer, SlidingWindowLimiter, WaitInterrupted, Window
from topcoins.producers.retry import RetryPolicy, with_retries
from topcoins.producers.status import StatusReporter

__all__ = [
    "AuthError",
    "BadResponseError",
    "BudgetError",
    "CoinMarketCapClient",
    "CreditLedger",
    "CreditPlan",
    "CryptoCompareClient",
    "LocalLimitError",
    "Pacer",
    "ParameterError",
    "Poller",
    "PriceSnapshotFetcher",
    "PricingBudget",
    "RankedIdsReader",
    "RateLimitError",
    "RateLimitUsage",
    "RetryPolicy",
    "ServerError",
    "SlidingWindowLimiter",
    "SnapshotPublisher",
    "StatusReporter",
    "UpstreamError",
    "UpstreamTimeout",
    "WaitInterrupted",
    "Window",
    "plan_pricing",
    "run_pricing",
    "run_ranking",
    "with_retries",
]
