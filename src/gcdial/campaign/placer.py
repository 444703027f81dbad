"""The placer: one contact dialed (or one call found in flight followed) and its result recorded.

For each dial the gate is asked first; the intent is committed *before* the create-call POST, then
marked accepted (conversation id), not sent (provably never placed) or unknown; the call is
followed to its end over the run's notifications channel, and :func:`journal_change` says what its
result means for the journal, the contact and the run (a retry, a retired agent, a streak of
refusals that stops the run).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Final

from gcdial import dialing
from gcdial.calls import CallParams
from gcdial.campaign.decide import (
    AttemptResult,
    Change,
    ResultKind,
    WrapupContext,
    journal_change,
)
from gcdial.campaign.journal import (
    AttemptState,
    ContactRecord,
    JournalError,
    JournalFencedError,
)
from gcdial.campaign.pacing import PoolAgent
from gcdial.campaign.progress import AgentActivity, AgentView
from gcdial.campaign.rules import DoNotCallList
from gcdial.campaign.run_state import Job, RunContext, RunState
from gcdial.errors import (
    AgentNotReadyError,
    ApiError,
    AuthenticationError,
    AuthError,
    CallEffect,
    CallsRefusedError,
    ConfigError,
    GcdialError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)
from gcdial.gate import AgentGate, Refusal
from gcdial.monitor import CallEvent, Outcome
from gcdial.monitor.wrapup import WrapupWait
from gcdial.private_files import open_private
from gcdial.resolve import UNTAGGED_SKEW_S, Verdict, new_attempt_id

logger = logging.getLogger("gcdial.campaign")

AGENT_REFUSALS: Final = frozenset(
    {"conversation.error.no.user.station", "conversation.error.user.inactive"}
)

_NOTHING_SENT: Final = frozenset(
    {ResultKind.NOT_PLACED, ResultKind.NOT_SENT, ResultKind.RATE_LIMITED}
)
"""Results that prove the attempt never rang (the others of ``not_sent`` were refused)."""


class RefusalStreak:
    """The calls refused in a row (or whose outcome is unknown) since one was last placed:
    ``limit`` of them stop the run. ``contacts`` are those the streak finished, to put back to
    pending when it stopped the run (the API, not the contact, was at fault)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.contacts: list[int] = []

    def record(
        self, change: Change, contact_id: int, result: AttemptResult
    ) -> CallsRefusedError | None:
        """Count one attempt's end; the error to stop the run with when the streak is too long."""
        if change.placed:
            self.count = 0
            self.contacts.clear()
        if change.in_streak:
            self.contacts.append(contact_id)
        if change.fatal or not change.trouble:
            return None
        self.count += 1
        if self.count < self.limit:
            return None
        last = result.error if isinstance(result.error, GcdialError) else None
        return CallsRefusedError(self.count, last or GcdialError(result.detail))


class Placer:
    """Dials the contacts the dispatch loop hands it and records how each attempt ended.

    It keeps the :class:`RefusalStreak`: ``max_refusals`` in a row (or answers that leave outcomes
    unknown) stop the run, and :meth:`reopen_streak` puts the contacts refused in that streak back
    to pending.
    """

    def __init__(self, ctx: RunContext, state: RunState, gate: AgentGate) -> None:
        self._ctx = ctx
        self._state = state
        self._gate = gate
        self._streak = RefusalStreak(ctx.settings.max_refusals)
        settings = ctx.settings
        self._wrapup_rules = settings.wrapups()
        non_acd = ctx.client.settings.wrapup_non_acd
        wait = settings.queue_id is not None or non_acd
        self._wrapup = (
            WrapupWait(
                timeout_s=settings.wrapup_timeout_s,
                acd=settings.queue_id is not None,
                non_acd=non_acd,
            )
            if wait and settings.wrapup_timeout_s > 0
            else None
        )

    async def reopen_streak(self) -> None:
        """Put the contacts refused while the API refused every call back to pending."""
        ctx = self._ctx
        reason = "refused while the API refused every call; retry"
        for contact_id in self._streak.contacts:
            await ctx.db.call(ctx.journal.contacts.reopen, contact_id, reason)
        self._streak.contacts.clear()

    async def place(self, job: Job, agent: PoolAgent, view: AgentView | None) -> Refusal | None:
        """Ask the gate, dial one contact through the dialing core, then apply what its result
        means; the gate's refusal when it said no (nothing was journaled or sent)."""
        tag = new_attempt_id()
        gate = self._gate
        refusal = await gate.admit(agent.id, tag, job.contact.phone)
        if refusal is not None:
            return refusal
        try:
            await self._place_admitted(job, agent, view, tag)
        finally:
            await gate.release(tag)
        return None

    async def _place_admitted(
        self, job: Job, agent: PoolAgent, view: AgentView | None, tag: str
    ) -> None:
        ctx = self._ctx
        journal = ctx.journal
        contact = job.contact
        # The server-time bounds of the call, taken before the intent is committed and so never
        # later than the POST (the dialing core takes its own, tighter, just before it): a later
        # resolution (a resume) matches an untagged call only if it started after them.
        server_clock = ctx.client.transport.server_clock
        try:
            attempt_id = await ctx.db.call(
                journal.attempts.begin,
                contact.id,
                agent_id=agent.id,
                agent=str(agent),
                tag=tag,
                sent_after=server_clock.last,
                match_after=server_clock.passed(UNTAGGED_SKEW_S),
            )
        except JournalFencedError as exc:
            # Another replica took the campaign over: this run dials nothing more.
            self._state.fail(exc)
            return
        except JournalError as exc:
            logger.warning("not dialing line %d: %s", contact.line, exc)
            return
        await self._gate.bind(tag, attempt_id)
        ctx.tell(attempt_id, "dialing", contact, agent)
        if view is not None:
            view.set(AgentActivity.DIALING, contact.phone)
        accepted: list[asyncio.Future[None]] = []
        earlier = await self.earlier_conversations(contact.id, attempt_id)
        stale: list[str] = []

        def on_placed(conversation_id: str) -> None:
            if conversation_id in earlier:
                # The ladder pointed at a call this contact already had (an untagged call
                # matched by agent and number): that proves nothing about this attempt.
                stale.append(conversation_id)
                return
            # Journaled before the call is followed, so that a crash from here on resumes by
            # following the call, never by dialing it again (the journal thread keeps order).
            accepted.append(
                asyncio.ensure_future(
                    ctx.db.call(journal.attempts.mark_accepted, attempt_id, conversation_id)
                )
            )
            self._placed(contact, agent, view, conversation_id, attempt_id)
            ctx.tell(attempt_id, "placed", contact, agent, conversation_id=conversation_id)

        def on_event(event: CallEvent) -> None:
            if view is not None:
                _show(view, event)
            ctx.tell(attempt_id, "progress", contact, agent, progress=event.to_dict())

        params = CallParams(
            to=contact.phone,
            caller_id=ctx.settings.caller_id,
            caller_id_name=ctx.settings.caller_id_name,
            queue=ctx.settings.queue_id,
            attributes=dict(contact.attributes) or None,
        )
        try:
            handle = await dialing.dial(
                ctx.client.calls,
                ctx.client.transport,
                ctx.client.settings,
                agent.id,
                params,
                check_agent=False,
                follow=True,
                monitor=ctx.monitor,
                timeout_s=ctx.call_timeout_s,
                wrapup=self._wrapup is not None,
                wrapup_timeout_s=self._wrapup.timeout_s if self._wrapup is not None else 0.0,
                resolve_timeout_s=ctx.resolve_timeout_s,
                attempt_id=tag,
                on_placed=on_placed,
                on_event=on_event,
                clock=lambda: ctx.clock().timestamp(),
                sleep=ctx.sleep,
            )
            result = _result_of_dial(handle)
        except asyncio.CancelledError:
            raise
        except GcdialError as exc:
            result = _result_of_error(exc, placed=bool(accepted))
        if accepted:
            await asyncio.gather(*accepted)
        if stale:
            result = _stale_match(stale[0])
        await self._apply(attempt_id, contact, agent, result)

    async def earlier_conversations(self, contact_id: int, attempt_id: int) -> set[str]:
        """Conversation ids of the contact's other attempts."""
        ctx = self._ctx
        return {
            a.conversation_id
            for a in await ctx.db.call(ctx.journal.attempts.all, contact_id)
            if a.id != attempt_id and a.conversation_id is not None
        }

    def _placed(
        self,
        contact: ContactRecord,
        agent: PoolAgent,
        view: AgentView | None,
        conversation_id: str,
        attempt_id: int,
    ) -> None:
        ctx = self._ctx
        ctx.progress.placed += 1
        if view is not None:
            view.calls += 1
            view.set(AgentActivity.RINGING_AGENT, contact.phone)
        ctx.emit(
            "placed",
            f"{contact.phone} (line {contact.line}): call placed by {agent} ({conversation_id})",
            line=contact.line,
            phone=contact.phone,
            agent=str(agent),
            conversation_id=conversation_id,
            attempt=attempt_id,
        )

    async def _apply(
        self,
        attempt_id: int,
        contact: ContactRecord,
        agent: PoolAgent | None,
        result: AttemptResult,
    ) -> None:
        """Do what :func:`journal_change` says the result means: the journal, then the run."""
        ctx, state = self._ctx, self._state
        journal = ctx.journal
        earlier = [
            a.outcome or ""
            for a in await ctx.db.call(journal.attempts.all, contact.id)
            if a.id != attempt_id and a.state is AttemptState.ENDED and a.outcome
        ]
        context = (
            WrapupContext(
                self._wrapup_rules,
                state.rules.window,
                state.rules.zones_for(contact.as_contact()),
                contact.attributes,
            )
            if self._wrapup_rules is not None
            else None
        )
        change = journal_change(result, earlier, state.rules.retry, ctx.clock(), context)
        where = f"{contact.phone} (line {contact.line})"
        if change.action == "outcome":
            await ctx.db.call(
                journal.attempts.record_outcome,
                attempt_id,
                change.outcome,
                error_code=change.error_code,
                detail=change.detail,
                retry_at=change.retry_at,
                talk_s=change.talk_s,
                wrapup=change.wrapup,
                wrapup_action=change.wrapup_action,
                dnc=change.dnc,
            )
            if change.dnc:
                self._add_dnc(contact.phone)
            if change.wrapup is not None or change.wrapup_action == "missing":
                self._emit_wrapup(where, contact, attempt_id, change)
            ctx.progress.by_outcome[change.outcome] += 1
            ctx.tell(
                attempt_id,
                "outcome",
                contact,
                agent,
                outcome=change.outcome,
                detail=change.detail,
                wrapup=change.wrapup.to_dict() if change.wrapup is not None else None,
            )
            then = (
                f"; retry at {change.retry_at:%H:%M:%S} UTC" if change.retry_at is not None else ""
            )
            ctx.emit(
                "outcome",
                f"{where}: {change.outcome}{then}" + (f" [{agent}]" if agent is not None else ""),
                line=contact.line,
                phone=contact.phone,
                outcome=change.outcome,
                agent=str(agent) if agent is not None else None,
                attempt=attempt_id,
                retry_at=change.retry_at.isoformat() if change.retry_at is not None else None,
                detail=result.detail,
            )
        elif change.action == "unknown":
            await ctx.db.call(journal.attempts.mark_unknown, attempt_id, change.detail)
            ctx.progress.unknown += 1
            ctx.tell(attempt_id, "unknown", contact, agent, detail=change.detail)
            ctx.emit(
                "unknown",
                f"{where}: outcome unknown ({change.detail}); needs review, not re-dialed",
                line=contact.line,
                phone=contact.phone,
                agent=str(agent) if agent is not None else None,
                attempt=attempt_id,
            )
        else:
            await ctx.db.call(
                journal.attempts.mark_not_sent,
                attempt_id,
                change.detail,
                error_code=change.error_code,
                context_id=change.context_id,
                retry_at=change.retry_at,
            )
            step = "not_placed" if result.kind in _NOTHING_SENT else "refused"
            ctx.tell(attempt_id, step, contact, agent, detail=change.detail)
            self._emit_not_sent(where, contact, result, change)
        too_many = self._streak.record(change, contact.id, result)
        if change.retire_agent and agent is not None:
            state.retire(agent, result.detail)
        if change.fatal:
            state.fail(result.error or ConfigError(result.detail))
        elif too_many is not None and state.fatal is None:
            state.fail(too_many)

    def _add_dnc(self, phone: str) -> None:
        """A wrap-up put the number on the do-not-call list: this run's rules, and the DNC file
        the campaign uses (the journal already holds it, for a resume)."""
        ctx, state = self._ctx, self._state
        dnc = state.rules.dnc
        state.rules = replace(
            state.rules, dnc=DoNotCallList(dnc.numbers | {phone}, dnc.problems, dnc.file)
        )
        if ctx.settings.dnc_path:
            try:
                append_dnc(ctx.settings.dnc_path, {phone})
            except OSError as exc:  # the journal holds it: the next run adds it to the file
                ctx.emit("dnc_problem", f"could not add {phone} to the do-not-call file: {exc}")

    def _emit_wrapup(
        self, where: str, contact: ContactRecord, attempt_id: int, change: Change
    ) -> None:
        ctx = self._ctx
        wrapup = change.wrapup
        if wrapup is None:
            ctx.progress.wrapups_missing += 1
            ctx.emit(
                "wrapup_missing",
                f"{where}: no wrap-up arrived; listed for review",
                line=contact.line,
                phone=contact.phone,
                attempt=attempt_id,
            )
            return
        ctx.progress.by_disposition[wrapup.label] += 1
        ctx.emit(
            "wrapup",
            f"{where}: wrap-up {wrapup.label}" + (f" ({wrapup.notes})" if wrapup.notes else ""),
            line=contact.line,
            phone=contact.phone,
            attempt=attempt_id,
            code=wrapup.code,
            name=wrapup.name,
            notes=wrapup.notes,
            action=change.wrapup_action,
        )

    def _emit_not_sent(
        self, where: str, contact: ContactRecord, result: AttemptResult, change: Change
    ) -> None:
        ctx = self._ctx
        kind = result.kind
        if kind in (ResultKind.RATE_LIMITED, ResultKind.AGENT_REFUSED, ResultKind.FATAL):
            return
        if kind is ResultKind.NOT_PLACED:
            ctx.emit(
                "not_placed",
                f"{where}: proven not placed ({result.detail}); back in the queue",
                line=contact.line,
                phone=contact.phone,
            )
            return
        if kind is ResultKind.NOT_SENT:
            message = f"{where}: not sent ({result.detail}); will try again"
        elif kind is ResultKind.INVALID:
            ctx.progress.refused += 1
            message = f"{where}: not sent, {result.detail}"
        else:
            ctx.progress.refused += 1
            message = (
                f"{where}: refused by Genesys Cloud ({result.error_code or 'no code'}, contextId "
                f"{result.context_id or 'none'}): {result.detail}"
            )
        ctx.emit(
            "not_sent",
            message,
            line=contact.line,
            phone=contact.phone,
            code=change.error_code,
            context_id=change.context_id,
        )

    async def follow_and_settle(
        self,
        attempt_id: int,
        conversation_id: str,
        agent: PoolAgent | None,
        job: Job,
        view: AgentView | None,
    ) -> None:
        """Follow a call found in flight at resume to its end, then apply its result."""
        ctx = self._ctx
        monitor = ctx.monitor

        def on_event(event: CallEvent) -> None:
            if view is not None:
                _show(view, event)
            ctx.tell(attempt_id, "progress", job.contact, agent, progress=event.to_dict())

        ctx.tell(attempt_id, "placed", job.contact, agent, conversation_id=conversation_id)
        if view is not None:
            view.set(AgentActivity.RINGING_AGENT, job.contact.phone)
        holder = adopted_holder(attempt_id)
        agent_id = agent.id if agent is not None else job.agent_id
        if agent_id:
            # A call an earlier run (perhaps another replica, now dead) left live: its agent is
            # held for it, so that nothing else dials them meanwhile.
            live = await self._gate.hold(agent_id, holder, attempt_id)
            if live is not None:
                logger.warning(
                    "agent %s of attempt %s also has call %s", agent_id, attempt_id, live
                )
        try:
            outcome = await monitor.wait(
                conversation_id,
                agent_id=agent.id if agent is not None else None,
                timeout_s=ctx.call_timeout_s,
                on_event=on_event,
                wrapup=self._wrapup,
            )
            result = _result_of_outcome(outcome, conversation_id)
        except asyncio.CancelledError:
            raise
        except GcdialError as exc:
            result = _result_of_error(exc, placed=True)
        finally:
            await self._gate.release(holder)
        await self._apply(attempt_id, job.contact, agent, result)


def adopted_holder(attempt_id: int) -> str:
    """The gate's holder name for an attempt an earlier run left (its ladder, then its follow)."""
    return f"attempt:{attempt_id}"


def _result_of_dial(handle: dialing.Dial) -> AttemptResult:
    """The result of a dial that did not raise: placed (followed), not placed, or unknown."""
    verdict = handle.resolution.verdict
    if verdict is Verdict.NOT_PLACED:
        return AttemptResult(ResultKind.NOT_PLACED, handle.resolution.summary)
    if verdict is Verdict.UNKNOWN or handle.conversation_id is None:
        detail = handle.resolution.summary or "the create-call answer was lost"
        return AttemptResult(ResultKind.UNKNOWN, clip(detail))
    if handle.outcome is None:
        return AttemptResult(
            ResultKind.LOST_TRACK,
            "the call was placed but its end was not seen",
            conversation_id=handle.conversation_id,
        )
    return _result_of_outcome(handle.outcome, handle.conversation_id)


def _stale_match(conversation_id: str) -> AttemptResult:
    return AttemptResult(
        ResultKind.UNKNOWN,
        f"the resolution pointed at conversation {conversation_id}, an earlier call of this "
        "contact, so whether this attempt rang is not known",
    )


def _result_of_outcome(outcome: Outcome, conversation_id: str) -> AttemptResult:
    return AttemptResult(
        ResultKind.ENDED,
        outcome.reason,
        outcome=outcome.kind.value,
        error_code=outcome.error.code if outcome.error is not None else None,
        talk_s=outcome.talk_seconds,
        conversation_id=conversation_id,
        wrapup=outcome.wrapup,
        wrapup_missing=outcome.wrapup_missing,
    )


def _result_of_error(exc: GcdialError, *, placed: bool) -> AttemptResult:
    """The result of a dial that raised; ``placed``: the call was known to exist by then.

    What the error means for the call is the error's own ``call_effect``; within each, the kind
    says what the run does next (wait, skip the agent, stop the run...)."""
    detail = clip(exc.message)
    if placed:
        if isinstance(exc, NotFoundError):
            detail = "Genesys Cloud no longer knows the call"
        return AttemptResult(ResultKind.LOST_TRACK, f"lost track of the call: {detail}")
    if exc.call_effect is CallEffect.UNKNOWN:
        # It may have rung (an ambiguous create, or an error nobody classified): never re-dial.
        return AttemptResult(ResultKind.UNKNOWN, detail, error=exc)
    if exc.call_effect is CallEffect.REFUSED:
        if isinstance(exc, ConfigError):  # the setup, not this contact: the run stops
            return AttemptResult(ResultKind.FATAL, detail, error=exc)
        if isinstance(exc, AgentNotReadyError):
            return AttemptResult(ResultKind.AGENT_REFUSED, detail, error=exc)
        return AttemptResult(ResultKind.INVALID, detail)
    return _not_placed(exc, detail)


def _not_placed(exc: GcdialError, detail: str) -> AttemptResult:
    """The kind of an error that provably placed nothing (``CallEffect.NOT_PLACED``)."""
    if isinstance(exc, RateLimitedError):
        return AttemptResult(
            ResultKind.RATE_LIMITED,
            detail,
            error_code=exc.code,
            context_id=exc.context_id,
            retry_after_s=exc.retry_after,
            error=exc,
        )
    if isinstance(exc, ApiError):
        code = exc.code or ""
        if code in AGENT_REFUSALS or isinstance(exc, NotFoundError):
            return AttemptResult(
                ResultKind.AGENT_REFUSED, detail, error_code=exc.code, context_id=exc.context_id
            )
        if isinstance(exc, AuthenticationError | PermissionDeniedError) or code == "not.a.user":
            return AttemptResult(
                ResultKind.SYSTEMIC,
                detail,
                error=exc,
                error_code=exc.code,
                context_id=exc.context_id,
            )
        return AttemptResult(
            ResultKind.REFUSED, detail, error=exc, error_code=exc.code, context_id=exc.context_id
        )
    if isinstance(exc, AuthError):  # credentials: the run stops
        return AttemptResult(ResultKind.FATAL, detail, error=exc)
    return AttemptResult(ResultKind.NOT_SENT, detail, error=exc)


def append_dnc(path: str, numbers: set[str]) -> None:
    """Add numbers to a do-not-call file (one per line), kept 0600: it is customer data."""
    if not numbers:
        return
    with open_private(Path(path), "a") as file:
        if file.tell() > 0:
            with open(path, "rb") as check:
                check.seek(-1, os.SEEK_END)
                if check.read(1) != b"\n":
                    file.write("\n")
        for number in sorted(numbers):
            file.write(f"{number}  # do not call (wrap-up)\n")


def clip(text: str) -> str:
    """``text``, cut to at most 500 characters for the journal and the events."""
    return text if len(text) <= 500 else text[:497] + "..."


def _show(view: AgentView, event: CallEvent) -> None:
    from gcdial.monitor.events import EventKind

    activity = {
        EventKind.AGENT_ALERTING: AgentActivity.RINGING_AGENT,
        EventKind.AGENT_CONNECTED: AgentActivity.RINGING_CUSTOMER,
        EventKind.CUSTOMER_DIALING: AgentActivity.RINGING_CUSTOMER,
        EventKind.CUSTOMER_RINGING: AgentActivity.RINGING_CUSTOMER,
        EventKind.CUSTOMER_CONNECTED: AgentActivity.TALKING,
        EventKind.PARTICIPANT_DISCONNECTED: AgentActivity.WRAPPING_UP,
        EventKind.CALL_ENDED: AgentActivity.WRAPPING_UP,
    }.get(event.kind)
    if activity is not None and view.activity is not activity:
        view.set(activity)
