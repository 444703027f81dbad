"""Wakes SSE streams and the webhook worker when an event is appended (here or on a replica)."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["EventHub"]


class EventHub:
    """The highest event id seen, and a condition to wait for a higher one."""

    def __init__(self) -> None:
        self.last_id = 0
        self._cond = asyncio.Condition()

    async def notify(self, event_id: int) -> None:
        """An event with ``event_id`` exists: wake every waiter."""
        async with self._cond:
            if event_id > self.last_id:
                self.last_id = event_id
                self._cond.notify_all()

    async def wait_beyond(self, after_id: int, timeout_s: float) -> bool:
        """Wait until an event after ``after_id`` exists; False on timeout."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s), self._cond:
                await self._cond.wait_for(lambda: self.last_id > after_id)
                return True
        return False
