"""The dispatch loop: due contacts read from the journal, the rules applied, each to a free agent.

Due contacts are read a page at a time into the dispatcher (:mod:`gcdial.campaign.pacing`) while
it holds too few; the rules skip (do not call), defer (the calling window) or hold each. Every
assignment is one worker that asks the placer to dial; the loop then waits until a call ends, a
stop, or the next contact falls due.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, Final

from gcdial.campaign.decide import retry_decision
from gcdial.campaign.journal import AttemptState, ContactRecord
from gcdial.campaign.pacing import Assignment, PoolAgent
from gcdial.campaign.placer import Placer
from gcdial.campaign.progress import AgentActivity, AgentView
from gcdial.campaign.rules import Action
from gcdial.campaign.run_state import Job, RunContext, RunState
from gcdial.gate import Refusal

logger = logging.getLogger("gcdial.campaign")

PAGE: Final = 200
"""Due contacts read from the journal at a time."""
HARD_CAP_EXTRA: Final = 2000
"""Contacts held in memory beyond the window when some wait for a busy agent of their own."""

# Refusals no rest will change within a run: the agent is retired, as after such a failed dial.
_GONE_FOR_GOOD: Final = frozenset({"unknown", "inactive", "no_station"})


class DispatchLoop:
    """Hands due contacts to free agents until nothing is left, the end time, or a stop.

    With ``until_deferred`` it stops, instead of waiting, as soon as every contact left is due
    later. Contacts a worker is done with are released in the journal by the loop, in one write.
    """

    def __init__(
        self, ctx: RunContext, state: RunState, placer: Placer, *, until_deferred: bool
    ) -> None:
        self._ctx = ctx
        self._state = state
        self._placer = placer
        self._until_deferred = until_deferred
        self._to_release: list[int] = []
        self._skipped: dict[str, str] = {}  # agent id -> the reason last said

    def adopt(self, job: Job, agent_id: str) -> None:
        """Follow a call found in flight: its agent is kept busy meanwhile when it is in the pool
        and free, else the call is followed without one."""
        state = self._state
        dispatcher = state.dispatcher
        agent = dispatcher.pool.find(agent_id)
        if agent is not None and agent in dispatcher.pool.free():
            state.spawn(self._run_assignment(dispatcher.claim(job, agent.id)))
        else:
            state.spawn(self._follow_orphan(job))

    async def run(self) -> None:
        """Dispatch until nothing is left to dial, the end time, or a stop."""
        ctx, state = self._ctx, self._state
        journal = ctx.journal
        dispatcher = state.dispatcher
        rules = state.rules
        while not state.stopping:
            state.wake.clear()
            await self._release_done()
            now = ctx.clock()
            if rules.end_at is not None and now >= rules.end_at:
                state.ended = True
                ctx.emit("ended", "the campaign end time has come: no new calls")
                break
            await self._top_up()
            while (assignment := dispatcher.poll()) is not None:
                state.spawn(self._run_assignment(assignment))
            if state.stopping:
                break
            delay: float | None = None
            if dispatcher.queued == 0 and dispatcher.live == 0 and not state.tasks:
                # A worker that ended while the loop read the journal holds its contact until
                # released: released first, or the contact would not count as due.
                await self._release_done()
                due = await ctx.db.call(journal.pending.next_due_time)
                ctx.progress.next_due = due if due is not None and due > now else None
                if due is None:
                    break
                if rules.end_at is not None and due >= rules.end_at:
                    state.ended = True
                    ctx.emit(
                        "ended",
                        "the remaining contacts are due after the campaign end time",
                    )
                    break
                delay = max(0.0, (due - ctx.clock()).total_seconds())
                if delay > 0 and self._until_deferred:
                    state.deferred = True
                    ctx.emit(
                        "deferred_only",
                        f"every contact left waits for a later time (the first at "
                        f"{due:%Y-%m-%d %H:%M:%S} UTC): stopping as asked (--until-deferred)",
                        next_due=due.isoformat(),
                    )
                    break
            elif dispatcher.pool.free() and dispatcher.live < dispatcher.max_concurrent:
                due = await ctx.db.call(journal.pending.next_due_time)
                ctx.progress.next_due = due if due is not None and due > now else None
                if due is not None and due > ctx.clock():
                    delay = (due - ctx.clock()).total_seconds()
            await self._wait(delay)

    async def _release_done(self) -> None:
        """Let the journal find again the contacts the workers are done with."""
        if self._to_release:
            released, self._to_release = self._to_release, []
            await self._ctx.db.call(self._ctx.journal.pending.release, released)

    async def _wait(self, delay: float | None) -> None:
        """Until something changes (a call ended, a stop) or ``delay`` seconds pass."""
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._state.wake.wait())}
        if delay is not None:
            waiters.add(asyncio.ensure_future(self._ctx.sleep(delay)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _top_up(self) -> None:
        """Read due contacts into the dispatcher until it holds enough, applying the rules."""
        ctx, state = self._ctx, self._state
        journal = ctx.journal
        dispatcher = state.dispatcher
        rules = state.rules
        window = max(2 * dispatcher.max_concurrent, 16)
        while True:
            queued = dispatcher.queued
            starved = bool(dispatcher.pool.free()) and queued > 0
            if queued >= window + HARD_CAP_EXTRA or (queued >= window and not starved):
                return
            now = ctx.clock()
            rows = await ctx.db.call(journal.pending.due_now, now, limit=PAGE)
            if not rows:
                return
            held: list[int] = []
            deferred: list[tuple[int, datetime, str]] = []
            skipped: list[tuple[int, str, str]] = []
            for contact in rows:
                if contact.attempts and await self._retry_withdrawn(contact, now):
                    continue
                decision = rules.check(contact.as_contact(), now)
                if decision.action is Action.SKIP:
                    skipped.append((contact.id, decision.outcome or "skipped", decision.reason))
                    ctx.emit(
                        "skipped",
                        f"{contact.phone} (line {contact.line}): skipped, {decision.reason}",
                        line=contact.line,
                        phone=contact.phone,
                        outcome=decision.outcome,
                    )
                elif decision.action is Action.DEFER and decision.at is not None:
                    deferred.append((contact.id, decision.at, decision.reason))
                    ctx.emit(
                        "deferred",
                        f"{contact.phone} (line {contact.line}): waits until "
                        f"{decision.at:%Y-%m-%d %H:%M} UTC, {decision.reason}",
                        line=contact.line,
                        phone=contact.phone,
                        until=decision.at.isoformat(),
                    )
                elif decision.action is Action.DIAL:
                    held.append(contact.id)
                    self._queue(contact)
                else:  # ENDED for this contact: it stays pending for a later run
                    state.ended = True
                    held.append(contact.id)
                    ctx.emit(
                        "after_end",
                        f"{contact.phone} (line {contact.line}): left pending, {decision.reason}",
                        line=contact.line,
                        phone=contact.phone,
                    )
            await ctx.db.call(journal.pending.hold, held)
            await ctx.db.call(journal.pending.skip_many, skipped)
            await ctx.db.call(journal.pending.defer_many, deferred)

    async def _retry_withdrawn(self, contact: ContactRecord, now: datetime) -> bool:
        """A retry scheduled under earlier limits that today's limits no longer allow (a lower
        ``--max-attempts`` given at resume): finish the contact with its last outcome."""
        ctx, state = self._ctx, self._state
        journal = ctx.journal
        ended = [
            a
            for a in await ctx.db.call(journal.attempts.all, contact.id)
            if a.state is AttemptState.ENDED and a.outcome
        ]
        outcomes = [a.outcome or "" for a in ended]
        last_action = ended[-1].wrapup_action if ended else None
        decision = retry_decision(state.rules.retry, outcomes, now, wrapup_action=last_action)
        if decision.retry:
            return False
        reason = f"{decision.reason} (limits given at resume)"
        await ctx.db.call(journal.pending.finish, contact.id, outcomes[-1], reason)
        ctx.emit(
            "outcome",
            f"{contact.phone} (line {contact.line}): {outcomes[-1]}; no retry, {reason}",
            line=contact.line,
            phone=contact.phone,
            outcome=outcomes[-1],
            detail=reason,
        )
        return True

    def _queue(self, contact: ContactRecord) -> None:
        """Give the contact to the dispatcher, or count it as waiting for an agent not in the
        pool."""
        ctx, state = self._ctx, self._state
        dispatcher = state.dispatcher
        # A contact due at a set time (a callback, a retry) goes ahead of those never tried.
        first = contact.next_at is not None and contact.attempts > 0
        if contact.agent is None:
            dispatcher.add(Job(contact), first=first)
            return
        agent = dispatcher.pool.find(contact.agent)
        if agent is None or dispatcher.pool.is_retired(agent.id):
            key = contact.agent
            if not state.waiting_for[key]:
                ctx.emit(
                    "waiting_for_agent",
                    f"contacts for agent {key} wait: {key} is not in this run's pool",
                    agent=key,
                )
            state.waiting_for[key] += 1
            return
        dispatcher.add(Job(contact), agent=agent.id, first=first)

    async def _run_assignment(self, assignment: Assignment[Job]) -> None:
        """One worker: place the call (or follow one found in flight), then free the agent."""
        ctx, state = self._ctx, self._state
        job = assignment.item
        agent = assignment.agent
        view = ctx.progress.agents.get(agent.id)
        requeued = False
        try:
            if job.conversation_id is not None and job.attempt_id is not None:
                await self._placer.follow_and_settle(
                    job.attempt_id, job.conversation_id, agent, job, view
                )
            else:
                refusal = await self._placer.place(job, agent, view)
                if refusal is None:
                    self._skipped.pop(agent.id, None)  # admitted: a new refusal is said again
                elif refusal.reason == "do_not_call":
                    await self._skip_listed(job, refusal)
                else:
                    requeued = True
                    if refusal.reason in _GONE_FOR_GOOD:
                        state.retire(agent, refusal.message)
                        self._queue(job.contact)
                    else:
                        self._skip_agent(job, agent, view, refusal)
                        # The agent stays taken while it rests, so the dispatcher gives the
                        # contact to another agent meanwhile.
                        await ctx.sleep(refusal.retry_after_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: stop dialing; the journal stays consistent
            logger.exception("campaign worker failed")
            state.fail(exc)
        finally:
            state.dispatcher.finish(assignment)
            if view is not None and view.activity is not AgentActivity.RETIRED:
                view.set(AgentActivity.IDLE)
            if not requeued:
                self._to_release.append(job.contact.id)
            state.wake.set()

    async def _follow_orphan(self, job: Job) -> None:
        """A call found in flight whose agent is not in this run's pool: follow it all the same."""
        state = self._state
        assert job.attempt_id is not None
        assert job.conversation_id is not None
        try:
            await self._placer.follow_and_settle(
                job.attempt_id, job.conversation_id, None, job, None
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("following a call found in flight failed")
            state.fail(exc)
        finally:
            state.wake.set()

    async def _skip_listed(self, job: Job, refusal: Refusal) -> None:
        """The gate found the number on the store's do-not-call list: the contact is skipped
        for good, as a number of the campaign's own list is (the agent was never held)."""
        ctx = self._ctx
        contact = job.contact
        await ctx.db.call(
            ctx.journal.pending.skip_many, [(contact.id, "do_not_call", refusal.message)]
        )
        ctx.emit(
            "skipped",
            f"{contact.phone} (line {contact.line}): skipped, {refusal.message}",
            line=contact.line,
            phone=contact.phone,
            outcome="do_not_call",
        )

    def _skip_agent(
        self, job: Job, agent: PoolAgent, view: AgentView | None, refusal: Refusal
    ) -> None:
        """The gate refused the dial: the contact goes back to the queue (it stays held), the
        agent is tried again after a rest. Said once per agent and reason, not per refusal."""
        ctx = self._ctx
        self._queue(job.contact)
        if view is not None:
            view.note = refusal.message
        if self._skipped.get(agent.id) != refusal.reason:
            self._skipped[agent.id] = refusal.reason
            ctx.emit(
                "agent_skipped",
                f"agent {agent} skipped for now ({refusal.reason}): {refusal.message}",
                agent=str(agent),
                reason=refusal.reason,
                live_call=refusal.live_call,
            )
