"""``topcoins.streams`` re-exports the pure API, and importing the join does not load Faust."""

from __future__ import annotations

import subprocess
import sys

import topcoins.streams as streams


def test_every_exported_name_exists():
    assert all(hasattr(streams, name) for name in streams.__all__)


def test_importing_the_join_does_not_import_faust():
    code = "import sys, topcoins.streams.join; print('faust' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_importing_the_history_reader_does_not_import_faust():
    """The web service imports it for ``at=`` queries."""
    code = "import sys, topcoins.streams.history; print('faust' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
