import time
from dataclasses import dataclass

from topcoins.supervisor import Component, Supervisor


@dataclass(frozen=True)
class Shell(Component):
    script: str = "exec sleep 30"

    def argv(self) -> list[str]:
        return ["sh", "-c", self.script]


def test_stop_together_stops_every_component_at_once_and_kills_a_stubborn_one():
    supervisor = Supervisor({})
    for name in ("a", "b", "c"):
        supervisor.start(Shell(name, "unused"))
    supervisor.start(
        Shell("stubborn", "unused", script="trap '' TERM; while :; do sleep 0.05; done")
    )
    time.sleep(0.1)  # let the shell install its trap
    started = time.monotonic()
    supervisor.stop_together(["a", "b", "stubborn", "c"], timeout=0.3)
    took = time.monotonic() - started
    assert all(process.poll() is not None for process in supervisor.processes.values())
    assert took < 1.0  # one shared timeout, not one per component
    assert supervisor.processes["stubborn"].returncode == -9
    assert supervisor.processes["a"].returncode == -15
