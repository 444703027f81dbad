"""Agents' readiness as the pages and ``GET /v1/agents`` read it: one Genesys check per agent
for every reader of a replica.

Every open page reads its agents again after each presence change; without a shared answer, ten
supervisors watching twenty agents would spend the Genesys rate budget that dialing needs. A
check is kept for ``ttl_s`` and shared by the readers that ask meanwhile (and by those that ask
while it is under way); a presence change forgets that agent at once, so the next read is fresh.
Dialing never uses this: it checks the agent itself, fresh, before each call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["SharedChecks"]

T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    task: asyncio.Future[T]
    fresh_until: float


class SharedChecks(Generic[T]):
    """``get(agent)``: ``check(agent)`` shared for ``ttl_s``; failures are not kept."""

    def __init__(
        self,
        check: Callable[[str], Awaitable[T]],
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, _Entry[T]] = {}

    async def get(self, agent: str) -> T:
        """The agent's readiness (raises what ``check`` raises)."""
        name = agent.strip().lower()
        entry = self._entries.get(name)
        if entry is None or (entry.task.done() and self._clock() >= entry.fresh_until):
            entry = _Entry(asyncio.ensure_future(self._check(agent)), float("inf"))
            self._entries[name] = entry
            entry.task.add_done_callback(lambda task: self._settled(name, entry, task))
        return await asyncio.shield(entry.task)

    def _settled(self, name: str, entry: _Entry[T], task: asyncio.Future[T]) -> None:
        if task.cancelled() or task.exception() is not None:
            if self._entries.get(name) is entry:
                del self._entries[name]  # the next reader asks again
        else:
            entry.fresh_until = self._clock() + self._ttl_s

    def forget(self, *names: str) -> None:
        """Ask Genesys again next time for these agents (ids or names as readers give them)."""
        for name in names:
            self._entries.pop(name.strip().lower(), None)

    def clear(self) -> None:
        """Ask again for every agent (after a gap in the presence channel)."""
        self._entries.clear()
