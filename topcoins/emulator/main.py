"""Entry point: ``run(EmulatorConfig.from_env(os.environ))`` serves the emulator with uvicorn."""

from __future__ import annotations

import logging
import os
import sys

import uvicorn

from topcoins.emulator.app import create_app
from topcoins.emulator.config import EmulatorConfig
from topcoins.logs import configure_logging
from topcoins.settings import SettingsError

__all__ = ["EmulatorConfig", "main", "run"]

logger = logging.getLogger(__name__)


def run(config: EmulatorConfig) -> None:
    """Log JSON lines (keys redacted) and serve until SIGINT/SIGTERM."""
    configure_logging("emulator", config.log_level, config.secrets, config.log_format)
    logger.info("emulator starting", extra={"settings": config.public_dict()})
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )


def main() -> None:
    """``python -m topcoins.emulator``: read ``EMULATOR_*`` variables and run."""
    try:
        config = EmulatorConfig.from_env(os.environ)
    except SettingsError as exc:
        sys.exit(f"emulator: {exc}")
    run(config)
