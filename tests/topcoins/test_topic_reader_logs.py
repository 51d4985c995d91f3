"""A retrying reader logs one line with the reason; the traceback only at DEBUG."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.topcoins.test_topic_reader import TOP, failing_while, plain
from tests.web.fake_kafka import FakeLog, eventually, records
from topcoins.topic_reader import TopicReader


async def test_each_retry_is_one_warning_with_the_reason_and_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader = TopicReader(
        TOP,
        1,
        failing_while({"on": True}),
        lambda: FakeLog(records(plain(3))).factory(TOP),
        created_by="test",
        retry_first_s=0.01,
        retry_max_s=0.02,
    )
    caplog.set_level(logging.DEBUG, logger="topcoins.topic_reader")
    task = asyncio.create_task(reader.run())
    try:
        await eventually(lambda: reader.failures >= 2)
    finally:
        task.cancel()
        await asyncio.wait([task])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) >= 2
    assert all(r.exc_info is None and r.reason == "RuntimeError: boom" for r in warnings)
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert tracebacks and all(r.levelno == logging.DEBUG for r in tracebacks)
