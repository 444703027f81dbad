"""Who dials whom next: the agent pool, the due-time queue of contacts, and the concurrency cap.

No HTTP here. The request budget (``inin-ratelimit-*`` headers, 429 pauses) lives in
``gcdial.http.RateBudget``, shared by every request of the client; this module only decides which
contact goes to which free agent and when, and the budget then paces the requests themselves.

Rules of the dispatcher:

- an agent has at most one live call; the agent idle longest gets the next contact;
- a contact naming an agent waits for that agent, without holding up contacts for other agents;
- among the contacts an agent could take, the one due first (then added first) goes first;
- deferred and retry contacts wait in a due-time priority queue, never dropped;
- at most ``max_concurrent`` live calls in all.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from gcdial.errors import InputError

__all__ = ["AgentPool", "Assignment", "Dispatcher", "PoolAgent"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PoolAgent:
    """An agent already checked by the caller (exists, active, has a station)."""

    id: str
    label: str = ""

    def __str__(self) -> str:
        return self.label or self.id


class AgentPool:
    """The campaign's agents: which are free (in order of how long they have been idle)."""

    def __init__(self, agents: Iterable[PoolAgent]) -> None:
        self._agents: dict[str, PoolAgent] = {}
        for agent in agents:
            if agent.id in self._agents:
                raise InputError(f"Agent {agent} is listed twice.", hint="List each agent once.")
            self._agents[agent.id] = agent
        if not self._agents:
            raise InputError(
                "No agent can take calls: the campaign has nobody to dial through.",
                hint="Give agents with a phone station (gcdial agent show EMAIL shows why one "
                "is not ready).",
            )
        self._by_key = {a.id.lower(): a for a in self._agents.values()}
        self._by_key.update({a.label.lower(): a for a in self._agents.values() if a.label})
        self._free: deque[str] = deque(self._agents)
        self._busy: set[str] = set()
        self._retired: set[str] = set()

    def __len__(self) -> int:
        return len(self._agents)

    @property
    def agents(self) -> tuple[PoolAgent, ...]:
        """Every agent, in the order given."""
        return tuple(self._agents.values())

    def find(self, key: str) -> PoolAgent | None:
        """The agent with this id or label (email), case-insensitively; None if not in the pool."""
        return self._by_key.get(key.strip().lower())

    def free(self) -> list[PoolAgent]:
        """Free agents, idle longest first."""
        return [self._agents[i] for i in self._free]

    def is_busy(self, agent_id: str) -> bool:
        """Whether the agent has a live call."""
        return agent_id in self._busy

    def is_retired(self, agent_id: str) -> bool:
        """Whether the agent was taken out of the campaign."""
        return agent_id in self._retired

    def take(self, agent_id: str) -> PoolAgent:
        """Mark a free agent busy."""
        self._free.remove(agent_id)
        self._busy.add(agent_id)
        return self._agents[agent_id]

    def release(self, agent_id: str) -> None:
        """The agent's call ended: free again, at the back of the idle line."""
        if agent_id not in self._busy:
            raise ValueError(f"agent {agent_id} has no live call")
        self._busy.discard(agent_id)
        if agent_id not in self._retired:
            self._free.append(agent_id)

    def retire(self, agent_id: str) -> None:
        """Give the agent no more calls (a live call still ends normally)."""
        self._retired.add(agent_id)
        if agent_id in self._free:
            self._free.remove(agent_id)


@dataclass(frozen=True, slots=True)
class Assignment(Generic[T]):
    """A contact handed to an agent: the caller places the call, then calls ``finish``."""

    item: T
    agent: PoolAgent
    due: datetime


@dataclass(order=True, slots=True)
class _Entry(Generic[T]):
    due: datetime
    seq: int
    agent_id: str | None = field(compare=False)
    item: T = field(compare=False)
    first: bool = field(default=False, compare=False)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Dispatcher(Generic[T]):
    """Hands due contacts to free agents, one live call per agent, under a concurrency cap."""

    def __init__(
        self,
        pool: AgentPool,
        *,
        max_concurrent: int | None = None,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_concurrent is not None and max_concurrent < 1:
            raise InputError(
                f"The concurrency cap must be at least 1, not {max_concurrent}.",
                hint="Leave it out to allow one call per agent.",
            )
        self.pool = pool
        self.max_concurrent = max_concurrent or len(pool)
        self._clock = clock
        self._sleep = sleep
        self._seq = itertools.count()
        self._waiting: list[_Entry[T]] = []
        self._ready_any: deque[_Entry[T]] = deque()
        self._ready_for: dict[str, deque[_Entry[T]]] = {}
        self._live: dict[int, Assignment[T]] = {}
        self._stopped = False
        self._changed = asyncio.Event()

    @property
    def queued(self) -> int:
        """Contacts waiting (due or not)."""
        pinned = sum(len(q) for q in self._ready_for.values())
        return len(self._waiting) + len(self._ready_any) + pinned

    @property
    def live(self) -> int:
        """Assignments handed out and not finished."""
        return len(self._live)

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopped

    def next_due(self) -> datetime | None:
        """When the earliest waiting contact becomes due (None if none is waiting)."""
        return self._waiting[0].due if self._waiting else None

    def add(
        self,
        item: T,
        *,
        due: datetime | None = None,
        agent: str | None = None,
        first: bool = False,
    ) -> None:
        """Queue a contact, due now or at ``due``, for any agent or for agent id ``agent``;
        ``first``: once due, ahead of those queued earlier (a callback at the time a customer
        asked for is not left behind the rest of the list)."""
        agent_id = None
        if agent is not None:
            found = self.pool.find(agent)
            if found is None or self.pool.is_retired(found.id):
                raise ValueError(f"agent {agent} is not in the pool")
            agent_id = found.id
        when = due if due is not None else self._clock()
        heapq.heappush(self._waiting, _Entry(when, next(self._seq), agent_id, item, first))
        self._changed.set()

    def retire(self, agent_id: str) -> list[T]:
        """Take an agent out; return the contacts that were waiting for that agent only."""
        self.pool.retire(agent_id)
        orphans = [e.item for e in self._ready_for.pop(agent_id, deque())]
        keep = [e for e in self._waiting if e.agent_id != agent_id]
        orphans += [e.item for e in self._waiting if e.agent_id == agent_id]
        heapq.heapify(keep)
        self._waiting = keep
        self._changed.set()
        return orphans

    def _promote(self, now: datetime) -> None:
        first: dict[str | None, list[_Entry[T]]] = {}
        while self._waiting and self._waiting[0].due <= now:
            entry = heapq.heappop(self._waiting)
            if entry.first:
                first.setdefault(entry.agent_id, []).append(entry)
            elif entry.agent_id is None:
                self._ready_any.append(entry)
            else:
                self._ready_for.setdefault(entry.agent_id, deque()).append(entry)
        for agent_id, entries in first.items():
            ready = (
                self._ready_any
                if agent_id is None
                else self._ready_for.setdefault(agent_id, deque())
            )
            ready.extendleft(reversed(entries))

    def poll(self) -> Assignment[T] | None:
        """Hand out the next assignment possible right now, without waiting (None if none)."""
        if self._stopped or len(self._live) >= self.max_concurrent:
            return None
        self._promote(self._clock())
        for agent in self.pool.free():
            mine = self._ready_for.get(agent.id)
            candidates = [q for q in (mine, self._ready_any) if q]
            if not candidates:
                continue
            queue = min(candidates, key=lambda q: q[0])
            entry = queue.popleft()
            if mine is not None and not mine:
                del self._ready_for[agent.id]
            assignment = Assignment(entry.item, self.pool.take(agent.id), entry.due)
            self._live[id(assignment)] = assignment
            return assignment
        return None

    def claim(self, item: T, agent_id: str) -> Assignment[T]:
        """Hand ``item`` to a free agent at once, outside the queue (a call found in flight when
        a campaign resumes keeps its agent busy until it ends)."""
        assignment = Assignment(item, self.pool.take(agent_id), self._clock())
        self._live[id(assignment)] = assignment
        return assignment

    def finish(self, assignment: Assignment[T]) -> None:
        """The assignment's call is over: its agent takes the next contact."""
        if self._live.pop(id(assignment), None) is None:
            raise ValueError("assignment is not live")
        self.pool.release(assignment.agent.id)
        self._changed.set()

    def stop(self) -> None:
        """Hand out nothing more; :meth:`next` returns None from now on."""
        self._stopped = True
        self._changed.set()

    def _idle(self) -> bool:
        return not self._waiting and not self._ready_any and not self._ready_for

    async def next(self) -> Assignment[T] | None:
        """Wait for the next assignment; None once stopped, or when nothing is queued or live."""
        while True:
            self._changed.clear()
            assignment = self.poll()
            if assignment is not None:
                return assignment
            if self._stopped or (self._idle() and not self._live):
                return None
            due = self.next_due()
            delay = None if due is None else max(0.0, (due - self._clock()).total_seconds())
            await self._wait(delay)

    async def _wait(self, delay: float | None) -> None:
        tasks: set[asyncio.Future[object]] = set()
        tasks.add(asyncio.ensure_future(self._changed.wait()))
        if delay is not None:
            tasks.add(asyncio.ensure_future(self._sleep(delay)))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
