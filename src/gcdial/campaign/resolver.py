"""The resolver: what an earlier run left in flight or of unknown outcome, taken up again.

At the start of a run an *intent* without a conversation id is marked unknown for a human (its
POST may have gone out, so it is never re-dialed) by :func:`mark_intents_unknown`; or, where a
live witness exists (a service replica taking over a dead one's campaign), it goes through that
ladder (:func:`settle_intents`) to placed, not placed, or unknown with its evidence; an accepted
call is handed to the dispatch loop to follow (:meth:`Resolver.in_flight`); and attempts of
unknown outcome go through the resolution ladder again (:meth:`Resolver.resolve_unknowns`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime

from gcdial import dialing
from gcdial.campaign.dbthread import JournalThread
from gcdial.campaign.journal import Attempt, AttemptState, ContactRecord, Journal
from gcdial.campaign.placer import Placer, adopted_holder, clip
from gcdial.campaign.progress import Progress
from gcdial.campaign.run_state import Emit, Job, RunContext, RunState, Tell
from gcdial.errors import GcdialError
from gcdial.gate import AgentGate
from gcdial.resolve import LONG_PAST_S, Evidence, LadderSettings, Resolution, Verdict
from gcdial.resolve import Attempt as ResolveAttempt

IntentLadder = Callable[[ResolveAttempt], Awaitable[Resolution]]
"""The ladder for an intent an earlier run left without Genesys' answer, with a live witness
(the service: a replica's notifications channel that watched the agent): placed, not placed, or
unknown with its evidence and what would settle it."""

logger = logging.getLogger("gcdial.campaign")


async def mark_intents_unknown(
    db: JournalThread, journal: Journal, *, progress: Progress, emit: Emit, tell: Tell
) -> None:
    """Mark unknown, for a person to review, every intent a previous run left without Genesys
    Cloud's answer: its call may have been placed, so it is never re-dialed."""
    for attempt in await db.call(journal.attempts.in_flight):
        if attempt.state is not AttemptState.INTENT:
            continue
        detail = (
            "the previous run stopped after deciding to dial and before Genesys Cloud's "
            "answer was recorded: the call may have been placed, so it is not re-dialed"
        )
        await db.call(journal.attempts.mark_unknown, attempt.id, detail)
        contact = await db.call(journal.contacts.get, attempt.contact_id)
        progress.unknown += 1
        tell(attempt.id, "unknown", contact, None, detail=detail)
        emit(
            "unknown",
            f"{contact.phone} (line {contact.line}): outcome unknown after a restart; "
            "needs review, not re-dialed",
            line=contact.line,
            phone=contact.phone,
            attempt=attempt.id,
            reconciled=True,
        )


async def settle_intents(
    db: JournalThread,
    journal: Journal,
    ladder: IntentLadder,
    gate: AgentGate,
    *,
    attempt_key: str,
    progress: Progress,
    emit: Emit,
    tell: Tell,
) -> None:
    """Take every intent an earlier run left without Genesys' answer through ``ladder``, all at
    once, each agent held meanwhile: found placed, the call is followed by the run (accepted);
    proven not placed, the contact goes back in the queue without using up an attempt; else
    unknown, with the evidence looked at, for a person. Never re-dialed while in doubt."""
    intents = [
        a for a in await db.call(journal.attempts.in_flight) if a.state is AttemptState.INTENT
    ]

    async def settle(attempt: Attempt) -> None:
        contact = await db.call(journal.contacts.get, attempt.contact_id)
        where = f"{contact.phone} (line {contact.line})"
        holder = adopted_holder(attempt.id)
        if attempt.tag is None:
            resolution = Resolution(
                Verdict.UNKNOWN, (Evidence("resolver", "the attempt kept no attempt id"),)
            )
        else:
            await gate.hold(attempt.agent_id, holder, attempt.id)
            tagged = ResolveAttempt(
                attempt_id=attempt.tag,
                agent_id=attempt.agent_id,
                number=contact.phone,
                sent_at=attempt.created_at,
                sent_after=attempt.sent_after,
                attempt_key=attempt_key,
                match_after=attempt.match_after,
            )
            try:
                resolution = await ladder(tagged)
            except GcdialError as exc:
                why = Evidence("resolver", f"the resolution failed: {exc.message}")
                resolution = Resolution(Verdict.UNKNOWN, (why,))
        earlier = {
            a.conversation_id
            for a in await db.call(journal.attempts.all, contact.id)
            if a.id != attempt.id and a.conversation_id
        }
        conversation_id = resolution.conversation_id
        if (
            resolution.verdict is Verdict.PLACED
            and conversation_id
            and conversation_id not in earlier
        ):
            # Followed by the run (its agent stays held, under the same holder, till it ends).
            await db.call(journal.attempts.mark_accepted, attempt.id, conversation_id)
            emit(
                "resolved",
                f"{where}: the call a stopped run left was placed ({conversation_id}); "
                "following it to its outcome",
                line=contact.line,
                phone=contact.phone,
                conversation_id=conversation_id,
                attempt=attempt.id,
                reconciled=True,
            )
            return
        await gate.release(holder)
        if resolution.verdict is Verdict.NOT_PLACED:
            note = clip(f"proven not placed after a restart: {resolution.summary}")
            await db.call(
                journal.attempts.mark_not_sent,
                attempt.id,
                note,
                retry_at=attempt.created_at,
                outcome="not_placed",
            )
            tell(attempt.id, "not_placed", contact, None, detail=note)
            emit(
                "resolved",
                f"{where}: the call a stopped run left was not placed; back in the queue",
                line=contact.line,
                phone=contact.phone,
                attempt=attempt.id,
                verdict="not placed",
                reconciled=True,
            )
            return
        detail = clip(
            "the previous run stopped after deciding to dial and before Genesys Cloud's answer "
            f"was recorded; the call may have been placed, so it is not re-dialed. Looked at: "
            f"{resolution.summary}"
        )
        await db.call(journal.attempts.mark_unknown, attempt.id, detail)
        progress.unknown += 1
        tell(attempt.id, "unknown", contact, None, detail=detail)
        emit(
            "unknown",
            f"{where}: outcome unknown after a restart; needs review, not re-dialed",
            line=contact.line,
            phone=contact.phone,
            attempt=attempt.id,
            reconciled=True,
        )

    if intents:
        await asyncio.gather(*(settle(attempt) for attempt in intents))


class Resolver:
    """Takes up the attempts an earlier run left unsettled; a call found placed is followed to
    its outcome by the placer."""

    def __init__(self, ctx: RunContext, state: RunState, placer: Placer) -> None:
        self._ctx = ctx
        self._state = state
        self._placer = placer

    async def in_flight(self) -> AsyncGenerator[tuple[Job, str]]:
        """The calls an earlier run left accepted (placed, end not seen), each with its agent's
        id, to follow to their end."""
        ctx = self._ctx
        journal = ctx.journal
        for attempt in await ctx.db.call(journal.attempts.in_flight):
            if attempt.state is not AttemptState.ACCEPTED or attempt.conversation_id is None:
                continue
            contact = await ctx.db.call(journal.contacts.get, attempt.contact_id)
            job = Job(contact, attempt.id, attempt.conversation_id, attempt.agent_id)
            ctx.emit(
                "reconciling",
                f"{contact.phone} (line {contact.line}): following call "
                f"{attempt.conversation_id} placed before the restart",
                line=contact.line,
                phone=contact.phone,
                conversation_id=attempt.conversation_id,
            )
            yield job, attempt.agent_id

    async def resolve_unknowns(self) -> None:
        """Attempts of unknown outcome (left by a crash, or by an earlier run) go through the
        resolution ladder again, one at a time, without holding an agent; each costs one
        conversation-details query once its settle time has passed. Found: placed, followed to its
        outcome. Not found: "not placed" only for an attempt so old (settle time + ten minutes, by
        this machine's clock and the server's) that a call it created would show by now; then the
        contact goes back in the queue without using up an attempt. Anything else stays for a
        person (``campaign review``)."""
        ctx, state = self._ctx, self._state
        journal = ctx.journal
        monitor = ctx.monitor
        client = ctx.client
        for attempt in await ctx.db.call(journal.attempts.unresolved):
            if state.stopping or attempt.tag is None:
                continue
            contact = await ctx.db.call(journal.contacts.get, attempt.contact_id)
            await monitor.watch_agent(attempt.agent_id)
            tagged = ResolveAttempt(
                attempt_id=attempt.tag,
                agent_id=attempt.agent_id,
                number=contact.phone,
                sent_at=attempt.created_at,
                sent_after=attempt.sent_after,  # None in a journal from before schema 3
                attempt_key=client.settings.attempt_attribute,
                match_after=attempt.match_after,
            )
            settle = client.settings.analytics_settle_s
            age = self._age_s(attempt.created_at)
            try:
                resolution = await dialing.resolve_attempt(
                    client.transport,
                    tagged,
                    monitor=monitor,
                    health_mark=None,
                    ladder=LadderSettings(settle_s=settle),
                    # Only until the settle time has passed, then one details query: waiting
                    # longer cannot make a verdict more certain for an attempt nobody watched,
                    # and a run must not idle on an old attempt.
                    timeout_s=min(ctx.resolve_timeout_s, max(0.0, settle - age)),
                    clock=lambda: ctx.clock().timestamp(),
                    sleep=ctx.sleep,
                    started=attempt.created_at.timestamp(),
                    long_past=age >= settle + LONG_PAST_S,
                )
            except GcdialError as exc:
                logger.warning("resolving attempt %s failed: %s", attempt.id, exc)
                continue
            where = f"{contact.phone} (line {contact.line})"
            conversation_id = resolution.conversation_id
            if resolution.verdict is Verdict.NOT_PLACED:
                note = clip(f"proven not placed: {resolution.summary}")
                await ctx.db.call(
                    journal.contacts.record_verdict, contact.id, placed=False, note=note
                )
                ctx.progress.unknown = max(0, ctx.progress.unknown - 1)
                ctx.tell(attempt.id, "not_placed", contact, None, detail=note)
                self._emit_resolved(where, contact, attempt.id, "not placed; back in the queue")
                continue
            if conversation_id in await self._placer.earlier_conversations(contact.id, attempt.id):
                conversation_id = None  # an earlier call of this contact: proves nothing here
            if resolution.verdict is not Verdict.PLACED or conversation_id is None:
                await ctx.db.call(
                    journal.events.record,
                    "attempt.unresolved",
                    contact_id=contact.id,
                    attempt_id=attempt.id,
                    detail=clip(resolution.summary),
                )
                continue
            await ctx.db.call(journal.attempts.mark_accepted, attempt.id, conversation_id)
            ctx.progress.unknown = max(0, ctx.progress.unknown - 1)
            ctx.emit(
                "resolved",
                f"{where}: the call of unknown outcome was placed ({conversation_id}); "
                "following it to its outcome",
                line=contact.line,
                phone=contact.phone,
                conversation_id=conversation_id,
                attempt=attempt.id,
            )
            job = Job(contact, attempt.id, conversation_id, attempt.agent_id)
            await self._placer.follow_and_settle(attempt.id, conversation_id, None, job, None)

    def _age_s(self, moment: datetime) -> float:
        """How long ago ``moment`` was, by the shorter of this machine's and the server's clock
        (a clock skew must never make an attempt look older than it is)."""
        ctx = self._ctx
        ages = [(ctx.clock() - moment).total_seconds()]
        server_now = ctx.client.transport.server_clock.now()
        if server_now is not None:
            ages.append((server_now - moment).total_seconds())
        return min(ages)

    def _emit_resolved(
        self, where: str, contact: ContactRecord, attempt_id: int, verdict: str
    ) -> None:
        ctx = self._ctx
        ctx.emit(
            "resolved",
            f"{where}: the call of unknown outcome was {verdict}",
            line=contact.line,
            phone=contact.phone,
            attempt=attempt_id,
            verdict=verdict,
        )
