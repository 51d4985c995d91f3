"""The producers: poll CoinMarketCap and CryptoCompare, publish each snapshot to Kafka.

``run_pricing`` and ``run_ranking`` (in ``topcoins.producers.main``) are the process
entry points; the clients, the poll loop and the publisher are usable on their own.
"""

from topcoins.producers.coinmarketcap import CoinMarketCapClient
from topcoins.producers.cryptocompare import CryptoCompareClient
from topcoins.producers.errors import (
    AuthError,
    BadResponseError,
    ParameterError,
    RateLimitError,
    RateLimitUsage,
    ServerError,
    UpstreamError,
    UpstreamTimeout,
)
from topcoins.producers.main import run_pricing, run_ranking
from topcoins.producers.poller import Poller
from topcoins.producers.publisher import SnapshotPublisher
from topcoins.producers.retry import RetryPolicy, with_retries

__all__ = [
    "AuthError",
    "BadResponseError",
    "CoinMarketCapClient",
    "CryptoCompareClient",
    "ParameterError",
    "Poller",
    "RateLimitError",
    "RateLimitUsage",
    "RetryPolicy",
    "ServerError",
    "SnapshotPublisher",
    "UpstreamError",
    "UpstreamTimeout",
    "run_pricing",
    "run_ranking",
    "with_retries",
]
