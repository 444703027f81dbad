"""A background task of the service that dies says so in the log (it may leave a call
unsettled and its agent held), instead of vanishing silently."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gcdial.serve.service_core import _log_failure


async def test_a_failed_background_task_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def follow() -> None:
        raise RuntimeError("boom")

    async def fine() -> None:
        return None

    caplog.set_level(logging.ERROR, logger="gcdial.serve")
    failing = asyncio.create_task(follow(), name="gcdial-follow-c1")
    failing.add_done_callback(_log_failure)
    quiet = asyncio.create_task(fine(), name="gcdial-follow-c2")
    quiet.add_done_callback(_log_failure)
    cancelled = asyncio.create_task(asyncio.sleep(10), name="gcdial-follow-c3")
    cancelled.add_done_callback(_log_failure)
    cancelled.cancel()
    await asyncio.gather(failing, quiet, cancelled, return_exceptions=True)
    await asyncio.sleep(0)  # done callbacks run on the next turn of the loop
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["background task gcdial-follow-c1 failed: RuntimeError"]
