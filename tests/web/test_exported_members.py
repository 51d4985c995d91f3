"""topcoins.web re-exports exactly the public names of its modules."""

from __future__ import annotations

import topcoins.web


def test_all_names_resolve() -> None:
    for name in topcoins.web.__all__:
        assert getattr(topcoins.web, name) is not None
    assert sorted(topcoins.web.__all__) == topcoins.web.__all__
