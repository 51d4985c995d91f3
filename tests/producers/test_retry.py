"""Backoff, jitter, Retry-After and stop handling of ``with_retries``."""

from __future__ import annotations

import asyncio
import random

import pytest

from topcoins.producers.errors import (
    AuthError,
    BadResponseError,
    RateLimitError,
    ServerError,
    UpstreamError,
    UpstreamTimeout,
)
from topcoins.producers.retry import RetryPolicy, interruptible_sleep, retry_delay, with_retries

P = "test"


class FakeSleep:
    """Records requested delays; never sleeps."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float, stop: asyncio.Event | None) -> bool:
        self.delays.append(seconds)
        return False


def failing(*errors: UpstreamError, result: str = "ok"):
    """A coroutine function that raises ``errors`` in turn, then returns ``result``."""
    pending = list(errors)
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        if pending:
            raise pending.pop(0)
        return result

    call.calls = calls  # type: ignore[attr-defined]
    return call


def test_backoff_ceiling_doubles_up_to_max_delay():
    policy = RetryPolicy(attempts=10, base_delay=1.0, max_delay=20.0)

    assert [policy.backoff_ceiling(n) for n in range(1, 7)] == [1, 2, 4, 8, 16, 20]


@pytest.mark.parametrize("seed", range(5))
def test_full_jitter_stays_within_the_ceiling(seed):
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=30.0)
    rand = random.Random(seed).random

    for retry in range(1, 9):
        delay = retry_delay(ServerError("boom", provider=P), retry, policy, rand)
        assert delay is not None
        assert 0 <= delay < policy.backoff_ceiling(retry)


def test_jitter_uses_the_whole_range():
    policy = RetryPolicy(attempts=5, base_delay=2.0)
    error = UpstreamTimeout("slow", provider=P)

    assert retry_delay(error, 2, policy, lambda: 0.0) == 0.0
    assert retry_delay(error, 2, policy, lambda: 0.5) == 2.0
    assert retry_delay(error, 2, policy, lambda: 0.999) == pytest.approx(3.996)


async def test_retries_retriable_errors_then_returns():
    sleep = FakeSleep()
    call = failing(ServerError("500", provider=P), UpstreamTimeout("slow", provider=P))
    policy = RetryPolicy(attempts=3, base_delay=1.0)

    result = await with_retries(call, policy, sleep=sleep, rand=lambda: 1.0)

    assert result == "ok"
    assert len(call.calls) == 3
    assert sleep.delays == [1.0, 2.0]  # the ceiling grows


async def test_gives_up_after_the_last_attempt():
    sleep = FakeSleep()
    errors = [ServerError(str(n), provider=P) for n in range(5)]
    call = failing(*errors)

    with pytest.raises(ServerError, match="2"):
        await with_retries(call, RetryPolicy(attempts=3), sleep=sleep)

    assert len(call.calls) == 3
    assert len(sleep.delays) == 2


async def test_retry_after_is_honoured():
    sleep = FakeSleep()
    call = failing(RateLimitError("429", provider=P, retry_after=7.0))

    await with_retries(call, RetryPolicy(attempts=2, max_delay=30.0), sleep=sleep, rand=lambda: 0)

    assert sleep.delays == [7.0]


async def test_retry_after_longer_than_max_delay_gives_up_at_once():
    sleep = FakeSleep()
    call = failing(RateLimitError("daily limit", provider=P, retry_after=86400.0))

    with pytest.raises(RateLimitError):
        await with_retries(call, RetryPolicy(attempts=5, max_delay=30.0), sleep=sleep)

    assert len(call.calls) == 1
    assert sleep.delays == []


@pytest.mark.parametrize(
    "error",
    [
        AuthError("bad key", provider=P),
        BadResponseError("not json", provider=P),
    ],
)
async def test_non_retriable_errors_are_raised_at_once(error):
    sleep = FakeSleep()
    call = failing(error)

    with pytest.raises(type(error)):
        await with_retries(call, RetryPolicy(attempts=5), sleep=sleep)

    assert len(call.calls) == 1
    assert sleep.delays == []


async def test_other_exceptions_are_not_retried():
    async def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await with_retries(broken, RetryPolicy(attempts=5), sleep=FakeSleep())


async def test_on_retry_sees_error_number_and_delay():
    seen = []
    error = ServerError("500", provider=P)

    await with_retries(
        failing(error),
        RetryPolicy(attempts=2, base_delay=4.0),
        sleep=FakeSleep(),
        rand=lambda: 0.25,
        on_retry=lambda e, n, d: seen.append((e, n, d)),
    )

    assert seen == [(error, 1, 1.0)]


async def test_stop_event_interrupts_the_wait():
    stop = asyncio.Event()
    call = failing(*(ServerError("500", provider=P) for _ in range(3)))
    policy = RetryPolicy(attempts=3, base_delay=60.0, max_delay=60.0)
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, stop.set)
    started = loop.time()

    with pytest.raises(ServerError):
        await with_retries(call, policy, stop=stop, rand=lambda: 1.0)

    assert loop.time() - started < 5
    assert len(call.calls) == 1


async def test_stop_already_set_means_no_retry():
    stop = asyncio.Event()
    stop.set()
    sleep = FakeSleep()
    call = failing(ServerError("500", provider=P))

    with pytest.raises(ServerError):
        await with_retries(call, RetryPolicy(attempts=3), stop=stop, sleep=sleep)

    assert sleep.delays == []


async def test_interruptible_sleep_reports_whether_it_was_stopped():
    stop = asyncio.Event()

    assert await interruptible_sleep(0.01, stop) is False
    assert await interruptible_sleep(0.01, None) is False
    stop.set()
    assert await interruptible_sleep(60, stop) is True


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"base_delay": -1.0}, {"max_delay": -1.0}])
def test_policy_rejects_impossible_values(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)
