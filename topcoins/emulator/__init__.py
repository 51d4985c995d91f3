"""Upstream emulator: CoinMarketCap and CryptoCompare endpoints in their real shapes.

``create_app(EmulatorConfig(...))`` builds the Starlette app; ``topcoins.emulator.main.run``
serves it. See ``control.py`` for the ``/_emulator/`` API that tests use.
"""

from topcoins.emulator.app import create_app
from topcoins.emulator.config import EmulatorConfig

__all__ = ["EmulatorConfig", "create_app"]
