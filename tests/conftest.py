"""Shared test fixtures: recorded provider responses and a clean environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "upstream"


def load_fixture(name: str) -> Any:
    """Parse one recorded provider response from ``tests/fixtures/upstream``."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def fixture_json() -> Any:
    """``fixture_json(name)`` returns a parsed recorded response."""
    return load_fixture
