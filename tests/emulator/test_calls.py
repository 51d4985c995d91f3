from tests.emulator.conftest import FakeClock
from topcoins.emulator.calls import CallLog


def test_counts_and_windows():
    clock = FakeClock(1000.0)
    log = CallLog(keep=3, unix_now=clock)
    for step in (0, 30, 59.5, 59.9):
        clock.now = 1000 + step
        log.record("cryptocompare", "/data/top/totalvolfull")
    log.record("coinmarketcap", "/v1/cryptocurrency/listings/latest")
    made = log.calls_made("cryptocompare")
    assert made["total_calls"] == 4
    assert (made["second"], made["minute"]) == (2, 3)  # only the last 3 times are kept
    snapshot = log.snapshot()
    assert snapshot["cryptocompare"]["/data/top/totalvolfull"]["count"] == 4
    assert snapshot["cryptocompare"]["/data/top/totalvolfull"]["recent"] == [1030, 1059.5, 1059.9]
    log.clear()
    assert log.snapshot() == {"coinmarketcap": {}, "cryptocompare": {}}


def test_credits_by_period_and_forgotten_after_a_month():
    clock = FakeClock(1000.0)
    log = CallLog(unix_now=clock)
    log.charge(5)
    clock.now += 3600
    log.charge(2)
    log.charge(0)
    assert log.credits_since(0) == 7
    assert log.credits_since(clock.now) == 2
    clock.now += 33 * 86400
    log.charge(1)  # charges older than 32 days are dropped
    assert log.credits_since(0) == 1
    log.clear()
    assert log.credits_since(0) == 0
