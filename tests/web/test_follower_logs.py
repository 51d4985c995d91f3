"""A retrying follower logs one line with the reason; the traceback only at DEBUG."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.web.fake_kafka import FakeLog, eventually, records
from tests.web.test_follower import TOP, failing_while, plain
from topcoins.web.follower import TopicFollower


async def test_each_retry_is_one_warning_with_the_reason_and_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    follower = TopicFollower(
        TOP,
        1,
        failing_while({"on": True}),
        FakeLog(records(plain(3))).factory,
        created_by="test",
        retry_first_s=0.01,
        retry_max_s=0.02,
    )
    caplog.set_level(logging.DEBUG, logger="topcoins.web.follower")
    task = asyncio.create_task(follower.run())
    try:
        await eventually(lambda: follower.failures >= 2)
    finally:
        task.cancel()
        await asyncio.wait([task])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) >= 2
    assert all(r.exc_info is None and r.reason == "RuntimeError: boom" for r in warnings)
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert tracebacks and all(r.levelno == logging.DEBUG for r in tracebacks)
