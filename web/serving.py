"""The fastest event loop and HTTP parser uvicorn can use here: uvloop and httptools."""

from __future__ import annotations

import importlib
import logging

__all__ = ["fastest_server_options"]

logger = logging.getLogger(__name__)

# uvicorn option: (fast implementation, its module), (fallback shipped with uvicorn)
_CHOICES = {"loop": ("uvloop", "asyncio"), "http": ("httptools", "h11")}


def fastest_server_options() -> dict[str, str]:
    """uvicorn's ``loop`` and ``http`` options: uvloop and httptools whenever they import.

    They serve about 4x the requests per second of asyncio's loop and the pure-Python h11
    parser (``benchmarks/web_hot_path.py``). Where one does not install (uvloop has no
    Windows build), the fallback is used and a warning says so.
    """
    options: dict[str, str] = {}
    for option, (fast, fallback) in _CHOICES.items():
        try:
            importlib.import_module(fast)
        except ImportError as exc:
            logger.warning(
                "%s is not importable, serving with %s (slower): %s",
                fast,
                fallback,
                exc,
                extra={"uvicorn_option": option},
            )
            options[option] = fallback
        else:
            options[option] = fast
    return options
