"""fastest_server_options: uvloop and httptools when they import, a logged fallback otherwise."""

from __future__ import annotations

import logging
import sys

import pytest

from topcoins.web.serving import fastest_server_options


def test_uvloop_and_httptools_are_chosen_when_installed() -> None:
    # Both are dependencies (uvicorn[standard]) on every platform this runs on.
    assert fastest_server_options() == {"loop": "uvloop", "http": "httptools"}


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("uvloop", {"loop": "asyncio", "http": "httptools"}),
        ("httptools", {"loop": "uvloop", "http": "h11"}),
    ],
)
def test_a_missing_fast_implementation_falls_back_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    missing: str,
    expected: dict[str, str],
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import <missing>` fail
    with caplog.at_level(logging.WARNING, logger="topcoins.web.serving"):
        assert fastest_server_options() == expected
    fallback = {"uvloop": "asyncio", "httptools": "h11"}[missing]
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"{missing} is not importable, serving with {fallback} (slower)"
    ]
