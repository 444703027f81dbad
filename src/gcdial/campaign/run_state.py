"""What one campaign run works with and what it knows as it goes, shared by its parts.

A run (:mod:`gcdial.campaign.runner`) is three parts over one :class:`RunState`:

- the dispatch loop (:mod:`gcdial.campaign.dispatch`) reads due contacts, applies the rules and
  hands each to a free agent;
- the placer (:mod:`gcdial.campaign.placer`) dials one contact, or follows one call, and records
  what its result means;
- the resolver (:mod:`gcdial.campaign.resolver`) takes up what an earlier run left in flight or
  of unknown outcome.

:class:`RunContext` is what they work with and never change (the journal, the client, the
channel, the clock); :class:`RunState` is what several of them read and write (the rules, the
queue, the workers, why the run stops).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from gcdial.campaign.dbthread import JournalThread
from gcdial.campaign.journal import ContactRecord, Journal
from gcdial.campaign.pacing import Dispatcher, PoolAgent
from gcdial.campaign.pool import Exclusion, NoUsableAgentError
from gcdial.campaign.progress import AgentActivity, Progress
from gcdial.campaign.report import CampaignStatus
from gcdial.campaign.rules import Rules
from gcdial.campaign.settings import CampaignSettings
from gcdial.monitor import CallMonitor

if TYPE_CHECKING:
    from gcdial.client import AsyncClient

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


class Emit(Protocol):
    """Tells the observer one event of the run (a ``CampaignEvent``)."""

    def __call__(self, kind: str, message: str, **data: Any) -> None: ...


class Tell(Protocol):
    """Tells ``on_attempt`` one step of one attempt (an
    :class:`~gcdial.campaign.progress.AttemptUpdate`)."""

    def __call__(
        self,
        attempt_id: int,
        step: str,
        contact: ContactRecord,
        agent: PoolAgent | None,
        **more: Any,
    ) -> None: ...


class StopReason(StrEnum):
    """Why a run ended."""

    FINISHED = "finished"  # nothing left to dial
    WAITING_FOR_AGENTS = "waiting_for_agents"  # only contacts of agents not in the pool remain
    ENDED = "ended"  # the campaign end time came
    DEFERRED = "deferred"  # ``until_deferred``: every contact left waits for a later time
    INTERRUPTED = "interrupted"  # Ctrl-C / SIGTERM
    FAILED = "failed"  # stopped by an error (refusals, no agent left, credentials, ...)


@dataclass(frozen=True, slots=True)
class Job:
    """A contact to dial, or (``conversation_id`` set) a call found in flight to follow."""

    contact: ContactRecord
    attempt_id: int | None = None
    conversation_id: str | None = None
    agent_id: str | None = None
    """For a call found in flight: the agent who was dialed."""


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a run works with and never changes: the journal (through its thread), the client and
    the notifications channel, where it tells what happens, its clock and its time limits."""

    db: JournalThread
    journal: Journal
    client: AsyncClient
    settings: CampaignSettings
    monitor: CallMonitor
    progress: Progress
    emit: Emit
    tell: Tell
    clock: Clock
    sleep: Sleep
    call_timeout_s: float
    resolve_timeout_s: float


@dataclass(eq=False)
class RunState:
    """What the parts of a run read and write: the rules (a wrap-up can add to the do-not-call
    list), the queue and the pool (in ``dispatcher``), the workers, the contacts waiting for an
    agent not in the pool, and whether and why the run stops.

    ``wake`` is set whenever something the dispatch loop waits for changed (a call ended, a stop).
    """

    rules: Rules
    dispatcher: Dispatcher[Job]
    progress: Progress
    emit: Emit
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    waiting_for: Counter[str] = field(default_factory=Counter)
    stopping: bool = False
    interrupted: bool = False
    ended: bool = False
    deferred: bool = False
    fatal: BaseException | None = None

    def stop(self, *, interrupted: bool) -> None:
        """Hand out no new contact; calls in progress are followed to their end."""
        self.interrupted = self.interrupted or interrupted
        self.stopping = True
        self.progress.phase = "stopping"
        self.wake.set()

    def fail(self, exc: BaseException) -> None:
        """Stop the run for ``exc`` (the first error is the one the run ends with)."""
        if self.fatal is None:
            self.fatal = exc
            self.emit("error", f"stopping: {exc}")
        self.stopping = True
        self.progress.phase = "stopping"
        self.wake.set()

    def retire(self, agent: PoolAgent, why: str) -> None:
        """Take the agent out of the run; its own contacts wait, and with no agent left the run
        stops."""
        dispatcher = self.dispatcher
        if dispatcher.pool.is_retired(agent.id):
            return
        orphans = dispatcher.retire(agent.id)
        if orphans:
            self.waiting_for[str(agent)] += len(orphans)
        view = self.progress.agents.get(agent.id)
        if view is not None:
            view.set(AgentActivity.RETIRED)
            view.note = why
        self.emit(
            "agent_retired", f"agent {agent} taken out of the campaign: {why}", agent=str(agent)
        )
        if all(dispatcher.pool.is_retired(a.id) for a in dispatcher.pool.agents):
            self.fail(
                NoUsableAgentError(
                    [Exclusion(str(a), "retired", why) for a in dispatcher.pool.agents]
                )
            )

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as one of the run's workers (a run ends once none is left)."""
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        """Wait for every worker, including those started meanwhile."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def cancel(self) -> None:
        """Stop every worker at once (the next resume reconciles their calls)."""
        for task in list(self.tasks):
            task.cancel()

    def reason(self, status: CampaignStatus) -> StopReason:
        """Why the run ended, given the journal's final counts."""
        if self.fatal is not None:
            return StopReason.FAILED
        if self.interrupted:
            return StopReason.INTERRUPTED
        if status.finished:
            return StopReason.FINISHED
        if self.ended:
            return StopReason.ENDED
        if self.deferred:
            return StopReason.DEFERRED
        if self.waiting_for:
            return StopReason.WAITING_FOR_AGENTS
        return StopReason.FINISHED
