"""topcoins: the top crypto assets by 24h volume, priced in USD, served over HTTP."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("topcoins")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
