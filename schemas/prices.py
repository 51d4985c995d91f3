"""The one price rule of every topic, view and output: a usable USD price is finite and > 0.

A provider price of 0, below 0, NaN or infinity means "no price": the join publishes
``null`` for it (and counts it in its report), the web service, the history and replay
paths (which run the same join) serve ``null``, and the example consumer applies the same
rule to whatever it reads. A price is never invented or shown as 0.
"""

from __future__ import annotations

import math

__all__ = ["usable_price"]


def usable_price(price: float | None) -> float | None:
    """``price`` when it is a finite number greater than 0, else ``None``."""
    if price is None or not math.isfinite(price) or price <= 0:
        return None
    return price
