"""The price rule: one function, and the example consumer's copy agrees with it."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from topcoins.schemas.prices import usable_price

VALUES = [None, math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 5e-324, 0.00001025, 67012.34]
USABLE = {5e-324, 0.00001025, 67012.34}


@pytest.mark.parametrize("price", VALUES)
def test_only_a_finite_price_above_zero_is_usable(price):
    expected = price if price in USABLE else None
    assert usable_price(price) == expected


def test_the_example_consumer_applies_the_same_rule():
    path = Path(__file__).resolve().parents[2] / "scripts" / "example_consumer.py"
    spec = importlib.util.spec_from_file_location("example_consumer", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for price in VALUES:
        assert module.usable_price(price) == usable_price(price), price
