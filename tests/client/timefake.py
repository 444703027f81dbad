"""A fake clock for the client tests: sleeping advances it instantly and is recorded."""

from __future__ import annotations

import asyncio
import threading


class FakeTime:
    """Monotonic fake time; ``sleep`` and ``async_sleep`` advance it and record each duration."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)
