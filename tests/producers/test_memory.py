"""``release_freed_memory``: pages freed by a poll go back to the OS."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from topcoins.producers.memory import release_freed_memory


def resident_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's",
)
def test_freed_heap_pages_are_returned_to_the_os() -> None:
    # 1 KB objects live on the C heap (not Python's small-object arenas); a few that stay
    # alive, spread among them, keep glibc from giving the freed ones back by itself.
    blocks = [bytes(1024) + bytes([n % 256]) for n in range(60_000)]
    survivors = blocks[::500]
    del blocks
    before = resident_kib()
    assert release_freed_memory()
    after = resident_kib()
    assert before - after > 20_000, (before, after)  # most of the ~60 MB came back
    assert len(survivors) == 120
