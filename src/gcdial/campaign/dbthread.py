"""Run journal work on one dedicated thread, so that SQLite's fsyncs never stall the event loop.

The journal commits with ``synchronous = FULL`` (one fsync per state change, about a millisecond
or more each); a campaign with fifty agents makes hundreds of them a second. SQLite releases the
GIL while it waits for the disk, so a single worker thread keeps the loop free and still runs the
journal's operations one at a time, in the order they were asked for.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["JournalThread"]

P = ParamSpec("P")
R = TypeVar("R")


class JournalThread:
    """One worker thread; :meth:`call` awaits a function run there."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gcdial-journal")

    async def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` on the journal thread and return its result.

        A cancelled caller does not cancel the work: a started transaction always completes.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Finish the queued work and stop the thread."""
        self._pool.shutdown(wait=True)
