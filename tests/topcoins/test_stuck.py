"""``topcoins.stuck``: the one definition of a stuck consumer."""

from __future__ import annotations

from topcoins.stuck import ProgressWatch, StuckConsumers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_failures_in_a_row_make_it_stuck_and_one_success_ends_it() -> None:
    watch = ProgressWatch(stuck_failures=3)
    for n in range(3):
        assert watch.reason is None
        watch.failed(f"OSError('try {n}')")
    assert watch.reason == "3 failed attempts in a row; last error: OSError('try 2')"
    watch.succeeded()
    assert watch.reason is None


def test_a_stall_counts_only_while_messages_wait_at_an_unchanged_position() -> None:
    clock = Clock()
    watch = ProgressWatch(stuck_after_s=30.0, clock=clock)
    watch.observe({0: 5}, waiting=True)
    watch.observe({0: 5}, waiting=True)  # the stall starts here
    clock.now += 29.0
    assert watch.reason is None
    clock.now += 1.0
    assert watch.reason == "no progress for 30 s although messages wait after positions {0: 5}"
    watch.observe({0: 6}, waiting=True)  # it moved
    assert watch.reason is None
    watch.observe({0: 6}, waiting=False)  # caught up: idle is not stuck
    clock.now += 60.0
    assert watch.reason is None


def test_stuck_consumers_names_only_the_stuck_ones() -> None:
    consumers = StuckConsumers()
    consumers.watch("a.top.v1", lambda: None)
    consumers.watch("a.status.v1", lambda: "3 failed attempts in a row")
    assert consumers.readyz_fields() == {
        "stuck_consumers": {"a.status.v1": "3 failed attempts in a row"}
    }
