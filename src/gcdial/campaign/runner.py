"""The campaign runner: a contact list dialed through a pool of agents, once, within the rules.

One run, in order:

1. open (or create) the journal: its lock keeps a second process out; a journal of another list
   or of a newer gcdial is refused;
2. attempts left in flight by a crash are reconciled: an *intent* without a conversation id is
   marked unknown for a human (its POST may have gone out, so it is never re-dialed); an accepted
   call is followed to its end, its agent kept busy meanwhile;
3. the list is streamed into the journal (once; a crash mid-load resumes the load);
4. the agents are checked (no station, inactive, unknown: excluded with a warning);
5. dispatching: due contacts are read from the journal a page at a time, the rules applied (do
   not call, calling window, end time), and each goes to the next free agent. For each dial the
   intent is committed *before* the create-call POST, then marked accepted (conversation id), not
   sent (provably never placed) or unknown; the call is followed to its end over one shared
   notifications channel; the outcome is recorded with the retry decision.

Stopping (:meth:`CampaignRunner.request_stop`, Ctrl-C, SIGTERM) hands out no new contact and
follows the calls in progress to their end. When the API refuses call after call (or answers so
that outcomes are unknown), the run stops after ``max_refusals`` in a row instead of burning the
list; contacts refused in that streak are put back to pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from gcdial import dialing
from gcdial._shared import DEFAULT_RESOLVE_TIMEOUT_S
from gcdial.calls import CallParams
from gcdial.campaign.csvinput import (
    ContactReader,
    CsvFileError,
    ValidationReport,
    file_fingerprint,
    validate_csv,
)
from gcdial.campaign.dbthread import JournalThread
from gcdial.campaign.decide import (
    AttemptResult,
    Change,
    ResultKind,
    WrapupContext,
    journal_change,
    retry_decision,
)
from gcdial.campaign.journal import AttemptState, ContactRecord, Journal, JournalError
from gcdial.campaign.pacing import AgentPool, Assignment, Dispatcher, PoolAgent
from gcdial.campaign.pool import Exclusion, NoUsableAgentError, PoolCheck, check_pool
from gcdial.campaign.progress import (
    AgentActivity,
    AgentView,
    AttemptHook,
    AttemptUpdate,
    BudgetView,
    CampaignEvent,
    Observer,
    Progress,
)
from gcdial.campaign.report import CampaignStatus, campaign_status
from gcdial.campaign.rules import Action, DoNotCallList, Rules
from gcdial.campaign.settings import CampaignSettings
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
from gcdial.gate import AgentGate, ReadinessGate, Refusal
from gcdial.monitor import CallEvent, CallMonitor, Outcome
from gcdial.monitor.wrapup import WrapupWait
from gcdial.private_files import open_private
from gcdial.resolve import LONG_PAST_S, UNTAGGED_SKEW_S, LadderSettings, Verdict, new_attempt_id
from gcdial.resolve import Attempt as ResolveAttempt

if TYPE_CHECKING:
    from gcdial.client import AsyncClient

__all__ = [
    "AGENT_STATES_META",
    "CallsRefusedError",
    "CampaignRunner",
    "RunResult",
    "StopReason",
]

logger = logging.getLogger("gcdial.campaign")

DEFAULT_CALL_TIMEOUT_S: Final = 4 * 3600.0
"""How long one call may last before the runner stops following it (outcome then unknown)."""
PAGE: Final = 200
AGENT_STATES_META: Final = "agent_states"
"""The journal meta key holding the pool as the last run left it (idle, retired and why)."""
"""Due contacts read from the journal at a time."""
HARD_CAP_EXTRA: Final = 2000
"""Contacts held in memory beyond the window when some wait for a busy agent of their own."""
AGENT_REFUSALS: Final = frozenset(
    {"conversation.error.no.user.station", "conversation.error.user.inactive"}
)

_NOTHING_SENT: Final = frozenset(
    {ResultKind.NOT_PLACED, ResultKind.NOT_SENT, ResultKind.RATE_LIMITED}
)
"""Results that prove the attempt never rang (the others of ``not_sent`` were refused)."""

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


# Refusals no rest will change within a run: the agent is retired, as after such a failed dial.
_GONE_FOR_GOOD: Final = frozenset({"unknown", "inactive", "no_station"})


def _utc_now() -> datetime:
    return datetime.now(UTC)


class StopReason(StrEnum):
    """Why a run ended."""

    FINISHED = "finished"  # nothing left to dial
    WAITING_FOR_AGENTS = "waiting_for_agents"  # only contacts of agents not in the pool remain
    ENDED = "ended"  # the campaign end time came
    DEFERRED = "deferred"  # ``until_deferred``: every contact left waits for a later time
    INTERRUPTED = "interrupted"  # Ctrl-C / SIGTERM
    FAILED = "failed"  # stopped by an error (refusals, no agent left, credentials, ...)


@dataclass(frozen=True)
class RunResult:
    """How a run ended: why, the journal's final counts, and the error that stopped it (if any)."""

    reason: StopReason
    status: CampaignStatus
    progress: Progress
    error: BaseException | None = None
    resumed: bool = False
    validation: ValidationReport | None = None
    excluded: tuple[Exclusion, ...] = ()
    waiting_for: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Job:
    """A contact to dial, or (``conversation_id`` set) a call found in flight to follow."""

    contact: ContactRecord
    attempt_id: int | None = None
    conversation_id: str | None = None


class CampaignRunner:
    """Runs one campaign: ``await CampaignRunner(settings, client, journal_path=p).run()``.

    ``clock`` (aware UTC datetimes) drives the rules, the journal's times and the resolution of
    ambiguous creates; ``sleep`` waits for the next due contact (inject both to test windows and
    retries without waiting; the sandbox injects its accelerated clock, which is the emulator's).
    ``observer`` is told every event; :attr:`progress` is the snapshot a display draws;
    ``on_attempt`` is told every step of every attempt (:class:`AttemptUpdate`). ``gate``
    (:mod:`gcdial.gate`) is asked before every dial; by default it checks the agent's readiness.
    With ``until_deferred`` the run stops, instead of waiting, as soon as every contact left is
    due later (a retry delay, the calling window): for cron.

    The runner holds the configuration; the state of a run is one :class:`_Run`, created by
    :meth:`run` once the journal, the agents and the notifications channel are ready.
    """

    def __init__(
        self,
        settings: CampaignSettings,
        client: AsyncClient,
        *,
        journal_path: str | Path,
        name: str | None = None,
        observer: Observer | None = None,
        on_attempt: AttemptHook | None = None,
        clock: Clock = _utc_now,
        sleep: Sleep = asyncio.sleep,
        monitor_mode: str = "auto",
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        progress_interval_s: float | None = 1.0,
        until_deferred: bool = False,
        resolve_timeout_s: float = DEFAULT_RESOLVE_TIMEOUT_S,
        gate: AgentGate | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.journal_path = Path(journal_path)
        self.name = name or Path(settings.csv_path).stem
        self.progress = Progress(name=self.name)
        self.observer = observer
        self.on_attempt = on_attempt
        self.clock = clock
        self.sleep = sleep
        self.monitor_mode = monitor_mode
        self.call_timeout_s = call_timeout_s
        self.progress_interval_s = progress_interval_s
        self.until_deferred = until_deferred
        self.resolve_timeout_s = resolve_timeout_s
        # Every dial asks the gate first (gcdial.gate): readiness, and in the service the
        # agent's exclusivity across everything that dials.
        self.gate: AgentGate = gate or ReadinessGate(client.agents.check)
        self._stop_requested = False
        self._run: _Run | None = None

    # Control

    def request_stop(self) -> None:
        """Stop handing out contacts; calls in progress are followed to their end."""
        if not self._stop_requested:
            self.emit("stopping", "stopping: no new calls; following the calls in progress")
        self._stop_requested = True
        self.progress.phase = "stopping"
        if self._run is not None:
            self._run.stop(interrupted=True)

    def abort(self) -> None:
        """Stop at once, leaving calls in progress to be reconciled by the next resume."""
        self.request_stop()
        if self._run is not None:
            self._run.cancel()

    # The run

    async def run(self) -> RunResult:
        """Run the campaign until nothing is left to dial, the end time, a stop, or a failure.

        Bad input (list, journal, do-not-call file, no usable agent) raises before anything is
        dialed. Failures while dialing stop the run and come back in :attr:`RunResult.error`.
        """
        rules = self.settings.rules()
        dnc = rules.dnc
        for problem in dnc.problems[:20]:
            self.emit("dnc_problem", f"do-not-call list: {problem}", line=problem.line)
        if len(dnc.problems) > 20:
            self.emit("dnc_problem", f"do-not-call list: {len(dnc.problems) - 20} more bad lines")
        db = JournalThread()
        to_close: Journal | None = None
        state: _Run | None = None
        try:
            journal, resumed = await db.call(self._open_journal)
            to_close = journal
            if resumed:
                # The rules given now (a wider --window...) decide when they may be dialed.
                await db.call(journal.redecide_deferrals)
            await self._mark_intents_unknown(db, journal)
            rules = await db.call(self._with_journal_dnc, journal, rules)
            self.progress.phase = "loading contacts"
            try:
                validation = await db.call(self._load_contacts, journal, resumed)
            except CsvFileError:
                if not resumed:
                    to_close = None  # the new journal was discarded
                raise
            self._report_bad_rows(validation)
            self.progress.phase = "checking agents"
            check = await check_pool(self.client, self.settings.agents)
            self._report_pool(check)
            pool = AgentPool(check.agents)
            dispatcher: Dispatcher[_Job] = Dispatcher(
                pool,
                max_concurrent=self.settings.concurrency,
                clock=self.clock,
                sleep=self.sleep,
            )
            await self._refresh(db, journal)
            async with CallMonitor(self.client.transport, mode=self.monitor_mode) as monitor:
                state = _Run(
                    self,
                    db=db,
                    journal=journal,
                    rules=rules,
                    pool=pool,
                    dispatcher=dispatcher,
                    monitor=monitor,
                )
                self._run = state
                if self._stop_requested:
                    state.stop(interrupted=True)
                try:
                    await state.go()
                finally:
                    self._run = None
            await self._refresh(db, journal)
            await db.call(
                journal.set_meta, "waiting_for_agents", json.dumps(dict(state.waiting_for))
            )
            await db.call(journal.set_meta, AGENT_STATES_META, json.dumps(self._agent_states()))
            status = await db.call(campaign_status, journal)
            return RunResult(
                reason=state.reason(status),
                status=status,
                progress=self.progress,
                error=state.fatal,
                resumed=resumed,
                validation=validation,
                excluded=check.excluded,
                waiting_for=dict(state.waiting_for),
            )
        finally:
            if state is not None:
                await state.cancel_and_wait()
            if to_close is not None:
                await db.call(to_close.close)
            db.close()

    # Journal and list

    def _with_journal_dnc(self, journal: Journal, rules: Rules) -> Rules:
        """The rules with the numbers earlier wrap-ups put on the do-not-call list (kept in the
        journal, so a resume never dials them, whether or not a DNC file is configured); the
        DNC file gains any a crash kept from reaching it."""
        numbers = journal.dnc_numbers()
        if not numbers:
            return rules
        if self.settings.dnc_path:
            append_dnc(self.settings.dnc_path, numbers - set(rules.dnc.numbers))
        dnc = rules.dnc
        return replace(rules, dnc=DoNotCallList(dnc.numbers | numbers, dnc.problems, dnc.file))

    def _open_journal(self) -> tuple[Journal, bool]:
        """The campaign's journal, and whether it already existed (a resume)."""
        csv_path = Path(self.settings.csv_path)
        try:
            fingerprint = file_fingerprint(csv_path)
        except FileNotFoundError:
            raise CsvFileError(
                "no such file", file=str(csv_path), hint="Check the path of the contact list."
            ) from None
        except (IsADirectoryError, PermissionError) as exc:
            raise CsvFileError(
                f"cannot be read ({exc.strerror})",
                file=str(csv_path),
                hint="Give the path of a readable CSV file.",
            ) from None
        path = self.journal_path
        if Journal.exists(path):
            journal = Journal.open(path, expect_fingerprint=fingerprint, clock=self.clock)
            try:
                journal.verify()
                journal.set_meta("settings", json.dumps(self.settings.to_json(), sort_keys=True))
                journal.record_event("campaign.resumed")
            except BaseException:
                journal.close()
                raise
            return journal, True
        if not path.parent.is_dir():
            raise JournalError(
                f"Cannot create the journal {path}: the folder {path.parent} does not exist.",
                hint="Create the folder, or give another --journal path.",
            )
        if self.settings.strict:
            validate_csv(
                csv_path,
                phone_column=self.settings.phone_column,
                default_country=self.settings.default_country,
                strict=True,
            )
        created = Journal.create(
            path,
            name=self.name,
            csv_path=str(csv_path.resolve()),
            csv_fingerprint=fingerprint,
            settings=self.settings.to_json(),
            clock=self.clock,
        )
        return created, False

    def _load_contacts(self, journal: Journal, resumed: bool = False) -> ValidationReport | None:
        if journal.contacts_loaded:
            return None
        reader = ContactReader(
            self.settings.csv_path,
            phone_column=self.settings.phone_column,
            default_country=self.settings.default_country,
        )
        try:
            journal.add_contacts(reader)
        except CsvFileError:
            if not resumed:
                # Nothing was dialed: drop the half-loaded journal so the fixed list starts clean.
                journal.discard()
            raise
        report = reader.report
        journal.add_skipped_rows(report.problems)
        journal.finish_loading(
            rows=report.rows,
            valid=report.valid,
            refused=report.problem_count,
            attribute_columns=report.attribute_columns,
        )
        return report

    def _report_bad_rows(self, report: ValidationReport | None) -> None:
        if report is None:
            return
        for problem in report.problems:
            self.emit(
                "bad_row",
                str(problem),
                file=problem.file,
                line=problem.line,
                column=problem.column,
                problem=problem.kind,
                reason=problem.reason,
                fix=problem.fix,
            )
        hidden = report.problem_count - len(report.problems)
        if hidden > 0:
            self.emit("bad_row_more", f"... and {hidden} more bad row(s): see the report")

    async def _mark_intents_unknown(self, db: JournalThread, journal: Journal) -> None:
        for attempt in await db.call(journal.in_flight):
            if attempt.state is not AttemptState.INTENT:
                continue
            detail = (
                "the previous run stopped after deciding to dial and before Genesys Cloud's "
                "answer was recorded: the call may have been placed, so it is not re-dialed"
            )
            await db.call(journal.mark_unknown, attempt.id, detail)
            contact = await db.call(journal.contact, attempt.contact_id)
            self.progress.unknown += 1
            self.tell(attempt.id, "unknown", contact, None, detail=detail)
            self.emit(
                "unknown",
                f"{contact.phone} (line {contact.line}): outcome unknown after a restart; "
                "needs review, not re-dialed",
                line=contact.line,
                phone=contact.phone,
                attempt=attempt.id,
                reconciled=True,
            )

    def _report_pool(self, check: PoolCheck) -> None:
        for excluded in check.excluded:
            self.emit(
                "agent_excluded",
                f"agent {excluded.agent} excluded: {excluded.message}",
                agent=excluded.agent,
                reason=excluded.reason,
            )
            self.progress.excluded[excluded.agent] = excluded.message
        for note in check.notes:
            self.emit("note", note)
        for agent in check.agents:
            self.progress.agents[agent.id] = AgentView(agent.id, str(agent))

    async def _refresh(self, db: JournalThread, journal: Journal) -> None:
        """Re-read the counts from the journal and the budget from the client."""
        counts = await db.call(journal.count_by, "contacts", "status")
        self.progress.by_status = Counter(counts)
        self.progress.total = sum(counts.values())
        budget = self.client.budget
        paused = budget.paused_until
        self.progress.budget = BudgetView(
            remaining=budget.remaining,
            limit=budget.limit,
            paused_s=max(0.0, paused - time.monotonic()) if paused is not None else 0.0,
            rate_limited=budget.rate_limited_count,
            windows=tuple((w.window, w.sent, w.idle_s) for w in history())
            if (history := getattr(budget, "history", None)) is not None
            else (),
        )

    def _agent_states(self) -> dict[str, dict[str, Any]]:
        """The pool as the run left it (kept in the journal for displays of a stopped run)."""
        excluded = self.progress.excluded
        states: dict[str, dict[str, Any]] = {
            agent: {"state": "excluded", "why": why} for agent, why in excluded.items()
        }
        for view in self.progress.agents.values():
            retired = view.activity is AgentActivity.RETIRED
            states[view.label] = {
                "state": "retired" if retired else "idle",
                "why": view.note if retired else None,
                "calls": view.calls,
            }
        return states

    def emit(self, kind: str, message: str, **data: Any) -> None:
        if self.observer is not None:
            self.observer(CampaignEvent(kind, message, data))

    def tell(
        self,
        attempt_id: int,
        step: str,
        contact: ContactRecord,
        agent: PoolAgent | None,
        **more: Any,
    ) -> None:
        """One step of one attempt, to ``on_attempt`` (a failing hook never stops the run)."""
        if self.on_attempt is None:
            return
        update = AttemptUpdate(
            attempt=attempt_id,
            step=step,
            line=contact.line,
            phone=contact.phone,
            external_id=contact.external_id,
            agent_id=agent.id if agent is not None else None,
            agent=str(agent) if agent is not None else None,
            **more,
        )
        try:
            self.on_attempt(update)
        except Exception:
            logger.exception("the attempt hook failed")


class _Run:
    """The state of one run, and the dialing it does: created by :meth:`CampaignRunner.run` once
    the journal, the agent pool and the notifications channel are ready, gone when it returns."""

    def __init__(
        self,
        runner: CampaignRunner,
        *,
        db: JournalThread,
        journal: Journal,
        rules: Rules,
        pool: AgentPool,
        dispatcher: Dispatcher[_Job],
        monitor: CallMonitor,
    ) -> None:
        self.runner = runner
        self.settings = runner.settings
        self.client = runner.client
        self.progress = runner.progress
        self.emit = runner.emit
        self.tell = runner.tell
        self.db = db
        self.journal = journal
        self.rules = rules
        self.pool = pool
        self.dispatcher = dispatcher
        self.monitor = monitor
        self._clock = runner.clock
        self._sleep = runner.sleep
        self._call_timeout_s = runner.call_timeout_s
        self._resolve_timeout_s = runner.resolve_timeout_s
        self._until_deferred = runner.until_deferred
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stop = False
        self._interrupted = False
        self.fatal: BaseException | None = None
        self._trouble = 0
        self._streak_final: list[int] = []
        self._to_release: list[int] = []
        self.waiting_for: Counter[str] = Counter()
        self._ended = False
        self._deferred = False
        self._wrapup_rules = runner.settings.wrapups()
        wait = runner.settings.queue_id is not None or runner.client.settings.wrapup_non_acd
        self._wrapup = (
            WrapupWait(
                timeout_s=runner.settings.wrapup_timeout_s,
                acd=runner.settings.queue_id is not None,
                non_acd=runner.client.settings.wrapup_non_acd,
            )
            if wait and runner.settings.wrapup_timeout_s > 0
            else None
        )
        self._skipped: dict[str, str] = {}  # agent id -> the reason last said

    async def go(self) -> None:
        """Follow what was left in flight, resolve what was left unknown, dial until done."""
        # Every agent's calls are subscribed before the first dial (one PUT for the lot).
        await self.monitor.watch_agents(agent.id for agent in self.pool.agents)
        ticker = self._start_ticker()
        try:
            await self._follow_in_flight()
            self._spawn(self._background(self._resolve_unknowns(), "resolving unknowns"))
            self.progress.phase = "dialing"
            await self._dispatch_loop()
            await self._drain()
            if self.fatal is not None and self._streak_final:
                await self._reopen_streak()
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker

    def stop(self, *, interrupted: bool) -> None:
        """Hand out no new contact; calls in progress are followed to their end."""
        self._interrupted = self._interrupted or interrupted
        self._stop = True
        self.progress.phase = "stopping"
        self._wake.set()

    def cancel(self) -> None:
        """Stop every worker at once (the next resume reconciles their calls)."""
        for task in list(self._tasks):
            task.cancel()

    async def cancel_and_wait(self) -> None:
        """Cancel what still runs and wait for it to finish."""
        self.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def reason(self, status: CampaignStatus) -> StopReason:
        """Why the run ended, given the journal's final counts."""
        if self.fatal is not None:
            return StopReason.FAILED
        if self._interrupted:
            return StopReason.INTERRUPTED
        if status.finished:
            return StopReason.FINISHED
        if self._ended:
            return StopReason.ENDED
        if self._deferred:
            return StopReason.DEFERRED
        if self.waiting_for:
            return StopReason.WAITING_FOR_AGENTS
        return StopReason.FINISHED

    async def _reopen_streak(self) -> None:
        journal = self.journal
        for contact_id in self._streak_final:
            await self.db.call(
                journal.reopen, contact_id, "refused while the API refused every call; retry"
            )
        self._streak_final.clear()

    def _retire(self, agent: PoolAgent, why: str) -> None:
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
            self._set_fatal(
                NoUsableAgentError(
                    [Exclusion(str(a), "retired", why) for a in dispatcher.pool.agents]
                )
            )

    # Dispatching

    async def _follow_in_flight(self) -> None:
        journal = self.journal
        dispatcher = self.dispatcher
        for attempt in await self.db.call(journal.in_flight):
            if attempt.state is not AttemptState.ACCEPTED or attempt.conversation_id is None:
                continue
            contact = await self.db.call(journal.contact, attempt.contact_id)
            job = _Job(contact, attempt.id, attempt.conversation_id)
            self.emit(
                "reconciling",
                f"{contact.phone} (line {contact.line}): following call "
                f"{attempt.conversation_id} placed before the restart",
                line=contact.line,
                phone=contact.phone,
                conversation_id=attempt.conversation_id,
            )
            agent = dispatcher.pool.find(attempt.agent_id)
            if agent is not None and agent in dispatcher.pool.free():
                self._spawn(self._run_assignment(dispatcher.claim(job, agent.id)))
            else:
                self._spawn(self._follow_orphan(job))

    async def _background(self, work: Coroutine[Any, Any, None], what: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: say so, but the dialing goes on (nothing was half-done)
            logger.exception("%s failed", what)
        finally:
            self._wake.set()

    async def _resolve_unknowns(self) -> None:
        """Attempts of unknown outcome (left by a crash, or by an earlier run) go through the
        resolution ladder again, one at a time, without holding an agent; each costs one
        conversation-details query once its settle time has passed. Found: placed, followed to its
        outcome. Not found: "not placed" only for an attempt so old (settle time + ten minutes, by
        this machine's clock and the server's) that a call it created would show by now; then the
        contact goes back in the queue without using up an attempt. Anything else stays for a
        person (``campaign review``)."""
        journal = self.journal
        monitor = self.monitor
        client = self.client
        for attempt in await self.db.call(journal.unresolved):
            if self._stop or attempt.tag is None:
                continue
            contact = await self.db.call(journal.contact, attempt.contact_id)
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
                    timeout_s=min(self._resolve_timeout_s, max(0.0, settle - age)),
                    clock=lambda: self._clock().timestamp(),
                    sleep=self._sleep,
                    started=attempt.created_at.timestamp(),
                    long_past=age >= settle + LONG_PAST_S,
                )
            except GcdialError as exc:
                logger.warning("resolving attempt %s failed: %s", attempt.id, exc)
                continue
            where = f"{contact.phone} (line {contact.line})"
            conversation_id = resolution.conversation_id
            if resolution.verdict is Verdict.NOT_PLACED:
                note = _clip(f"proven not placed: {resolution.summary}")
                await self.db.call(journal.record_verdict, contact.id, placed=False, note=note)
                self.progress.unknown = max(0, self.progress.unknown - 1)
                self.tell(attempt.id, "not_placed", contact, None, detail=note)
                self._emit_resolved(where, contact, attempt.id, "not placed; back in the queue")
                continue
            if conversation_id in await self._earlier_conversations(contact.id, attempt.id):
                conversation_id = None  # an earlier call of this contact: proves nothing here
            if resolution.verdict is not Verdict.PLACED or conversation_id is None:
                await self.db.call(
                    journal.record_event,
                    "attempt.unresolved",
                    contact_id=contact.id,
                    attempt_id=attempt.id,
                    detail=_clip(resolution.summary),
                )
                continue
            await self.db.call(journal.mark_accepted, attempt.id, conversation_id)
            self.progress.unknown = max(0, self.progress.unknown - 1)
            self.emit(
                "resolved",
                f"{where}: the call of unknown outcome was placed ({conversation_id}); "
                "following it to its outcome",
                line=contact.line,
                phone=contact.phone,
                conversation_id=conversation_id,
                attempt=attempt.id,
            )
            await self._follow_and_settle(
                attempt.id, conversation_id, None, _Job(contact, attempt.id, conversation_id), None
            )

    def _age_s(self, moment: datetime) -> float:
        """How long ago ``moment`` was, by the shorter of this machine's and the server's clock
        (a clock skew must never make an attempt look older than it is)."""
        ages = [(self._clock() - moment).total_seconds()]
        server_now = self.client.transport.server_clock.now()
        if server_now is not None:
            ages.append((server_now - moment).total_seconds())
        return min(ages)

    def _emit_resolved(
        self, where: str, contact: ContactRecord, attempt_id: int, verdict: str
    ) -> None:
        self.emit(
            "resolved",
            f"{where}: the call of unknown outcome was {verdict}",
            line=contact.line,
            phone=contact.phone,
            attempt=attempt_id,
            verdict=verdict,
        )

    async def _dispatch_loop(self) -> None:
        journal = self.journal
        dispatcher = self.dispatcher
        rules = self.rules
        while not self._stop:
            self._wake.clear()
            if self._to_release:
                released, self._to_release = self._to_release, []
                await self.db.call(journal.release, released)
            now = self._clock()
            if rules.end_at is not None and now >= rules.end_at:
                self._ended = True
                self.emit("ended", "the campaign end time has come: no new calls")
                break
            await self._top_up()
            while (assignment := dispatcher.poll()) is not None:
                self._spawn(self._run_assignment(assignment))
            if self._stop:
                break
            delay: float | None = None
            if dispatcher.queued == 0 and dispatcher.live == 0 and not self._tasks:
                due = await self.db.call(journal.next_due_time)
                self.progress.next_due = due if due is not None and due > now else None
                if due is None:
                    break
                if rules.end_at is not None and due >= rules.end_at:
                    self._ended = True
                    self.emit(
                        "ended",
                        "the remaining contacts are due after the campaign end time",
                    )
                    break
                delay = max(0.0, (due - self._clock()).total_seconds())
                if delay > 0 and self._until_deferred:
                    self._deferred = True
                    self.emit(
                        "deferred_only",
                        f"every contact left waits for a later time (the first at "
                        f"{due:%Y-%m-%d %H:%M:%S} UTC): stopping as asked (--until-deferred)",
                        next_due=due.isoformat(),
                    )
                    break
            elif dispatcher.pool.free() and dispatcher.live < dispatcher.max_concurrent:
                due = await self.db.call(journal.next_due_time)
                self.progress.next_due = due if due is not None and due > now else None
                if due is not None and due > self._clock():
                    delay = (due - self._clock()).total_seconds()
            await self._wait(delay)

    async def _wait(self, delay: float | None) -> None:
        """Until something changes (a call ended, a stop) or ``delay`` seconds pass."""
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._wake.wait())}
        if delay is not None:
            waiters.add(asyncio.ensure_future(self._sleep(delay)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _top_up(self) -> None:
        """Read due contacts into the dispatcher until it holds enough, applying the rules."""
        journal = self.journal
        dispatcher = self.dispatcher
        rules = self.rules
        window = max(2 * dispatcher.max_concurrent, 16)
        while True:
            queued = dispatcher.queued
            starved = bool(dispatcher.pool.free()) and queued > 0
            if queued >= window + HARD_CAP_EXTRA or (queued >= window and not starved):
                return
            now = self._clock()
            rows = await self.db.call(journal.due_now, now, limit=PAGE)
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
                    self.emit(
                        "skipped",
                        f"{contact.phone} (line {contact.line}): skipped, {decision.reason}",
                        line=contact.line,
                        phone=contact.phone,
                        outcome=decision.outcome,
                    )
                elif decision.action is Action.DEFER and decision.at is not None:
                    deferred.append((contact.id, decision.at, decision.reason))
                    self.emit(
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
                    self._ended = True
                    held.append(contact.id)
                    self.emit(
                        "after_end",
                        f"{contact.phone} (line {contact.line}): left pending, {decision.reason}",
                        line=contact.line,
                        phone=contact.phone,
                    )
            await self.db.call(journal.hold, held)
            await self.db.call(journal.skip_many, skipped)
            await self.db.call(journal.defer_many, deferred)

    async def _retry_withdrawn(self, contact: ContactRecord, now: datetime) -> bool:
        """A retry scheduled under earlier limits that today's limits no longer allow (a lower
        ``--max-attempts`` given at resume): finish the contact with its last outcome."""
        journal = self.journal
        ended = [
            a
            for a in await self.db.call(journal.attempts, contact.id)
            if a.state is AttemptState.ENDED and a.outcome
        ]
        outcomes = [a.outcome or "" for a in ended]
        last_action = ended[-1].wrapup_action if ended else None
        decision = retry_decision(self.rules.retry, outcomes, now, wrapup_action=last_action)
        if decision.retry:
            return False
        reason = f"{decision.reason} (limits given at resume)"
        await self.db.call(journal.finish_pending, contact.id, outcomes[-1], reason)
        self.emit(
            "outcome",
            f"{contact.phone} (line {contact.line}): {outcomes[-1]}; no retry, {reason}",
            line=contact.line,
            phone=contact.phone,
            outcome=outcomes[-1],
            detail=reason,
        )
        return True

    def _queue(self, contact: ContactRecord) -> None:
        dispatcher = self.dispatcher
        # A contact due at a set time (a callback, a retry) goes ahead of those never tried.
        first = contact.next_at is not None and contact.attempts > 0
        if contact.agent is None:
            dispatcher.add(_Job(contact), first=first)
            return
        agent = dispatcher.pool.find(contact.agent)
        if agent is None or dispatcher.pool.is_retired(agent.id):
            key = contact.agent
            if not self.waiting_for[key]:
                self.emit(
                    "waiting_for_agent",
                    f"contacts for agent {key} wait: {key} is not in this run's pool",
                    agent=key,
                )
            self.waiting_for[key] += 1
            return
        dispatcher.add(_Job(contact), agent=agent.id, first=first)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # One assignment: place the call (or follow one found in flight), record its end

    async def _run_assignment(self, assignment: Assignment[_Job]) -> None:
        job = assignment.item
        agent = assignment.agent
        view = self.progress.agents.get(agent.id)
        requeued = False
        try:
            if job.conversation_id is not None and job.attempt_id is not None:
                await self._follow_and_settle(job.attempt_id, job.conversation_id, agent, job, view)
            else:
                refusal = await self._place(job, agent, view)
                if refusal is not None and refusal.reason == "do_not_call":
                    await self._skip_listed(job, refusal)
                elif refusal is not None:
                    requeued = True
                    if refusal.reason in _GONE_FOR_GOOD:
                        self._retire(agent, refusal.message)
                        self._queue(job.contact)
                    else:
                        self._skip_agent(job, agent, view, refusal)
                        # The agent stays taken while it rests, so the dispatcher gives the
                        # contact to another agent meanwhile.
                        await self._sleep(refusal.retry_after_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: stop dialing; the journal stays consistent
            logger.exception("campaign worker failed")
            self._set_fatal(exc)
        finally:
            self.dispatcher.finish(assignment)
            if view is not None and view.activity is not AgentActivity.RETIRED:
                view.set(AgentActivity.IDLE)
            if not requeued:
                self._to_release.append(job.contact.id)
            self._wake.set()

    async def _skip_listed(self, job: _Job, refusal: Refusal) -> None:
        """The gate found the number on the store's do-not-call list: the contact is skipped
        for good, as a number of the campaign's own list is (the agent was never held)."""
        contact = job.contact
        await self.db.call(self.journal.skip_many, [(contact.id, "do_not_call", refusal.message)])
        self.emit(
            "skipped",
            f"{contact.phone} (line {contact.line}): skipped, {refusal.message}",
            line=contact.line,
            phone=contact.phone,
            outcome="do_not_call",
        )

    def _skip_agent(
        self, job: _Job, agent: PoolAgent, view: AgentView | None, refusal: Refusal
    ) -> None:
        """The gate refused the dial: the contact goes back to the queue (it stays held), the
        agent is tried again after a rest. Said once per agent and reason, not per refusal."""
        self._queue(job.contact)
        if view is not None:
            view.note = refusal.message
        if self._skipped.get(agent.id) != refusal.reason:
            self._skipped[agent.id] = refusal.reason
            self.emit(
                "agent_skipped",
                f"agent {agent} skipped for now ({refusal.reason}): {refusal.message}",
                agent=str(agent),
                reason=refusal.reason,
                live_call=refusal.live_call,
            )

    async def _follow_orphan(self, job: _Job) -> None:
        """A call found in flight whose agent is not in this run's pool: follow it all the same."""
        assert job.attempt_id is not None
        assert job.conversation_id is not None
        try:
            await self._follow_and_settle(job.attempt_id, job.conversation_id, None, job, None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("following a call found in flight failed")
            self._set_fatal(exc)
        finally:
            self._wake.set()

    async def _place(self, job: _Job, agent: PoolAgent, view: AgentView | None) -> Refusal | None:
        """Ask the gate, dial one contact through the dialing core, then apply what its result
        means; the gate's refusal when it said no (nothing was journaled or sent)."""
        tag = new_attempt_id()
        gate = self.runner.gate
        refusal = await gate.admit(agent.id, tag, job.contact.phone)
        if refusal is not None:
            return refusal
        self._skipped.pop(agent.id, None)
        try:
            await self._place_admitted(job, agent, view, tag)
        finally:
            await gate.release(tag)
        return None

    async def _place_admitted(
        self, job: _Job, agent: PoolAgent, view: AgentView | None, tag: str
    ) -> None:
        journal = self.journal
        contact = job.contact
        # The server-time bounds of the call, taken before the intent is committed and so never
        # later than the POST (the dialing core takes its own, tighter, just before it): a later
        # resolution (a resume) matches an untagged call only if it started after them.
        server_clock = self.client.transport.server_clock
        try:
            attempt_id = await self.db.call(
                journal.begin_attempt,
                contact.id,
                agent_id=agent.id,
                agent=str(agent),
                tag=tag,
                sent_after=server_clock.last,
                match_after=server_clock.passed(UNTAGGED_SKEW_S),
            )
        except JournalError as exc:
            logger.warning("not dialing line %d: %s", contact.line, exc)
            return
        await self.runner.gate.bind(tag, attempt_id)
        self.tell(attempt_id, "dialing", contact, agent)
        if view is not None:
            view.set(AgentActivity.DIALING, contact.phone)
        accepted: list[asyncio.Future[None]] = []
        earlier = await self._earlier_conversations(contact.id, attempt_id)
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
                    self.db.call(journal.mark_accepted, attempt_id, conversation_id)
                )
            )
            self._placed(contact, agent, view, conversation_id, attempt_id)
            self.tell(attempt_id, "placed", contact, agent, conversation_id=conversation_id)

        def on_event(event: CallEvent) -> None:
            if view is not None:
                _show(view, event)
            self.tell(attempt_id, "progress", contact, agent, progress=event.to_dict())

        params = CallParams(
            to=contact.phone,
            caller_id=self.settings.caller_id,
            caller_id_name=self.settings.caller_id_name,
            queue=self.settings.queue_id,
            attributes=dict(contact.attributes) or None,
        )
        try:
            handle = await dialing.dial(
                self.client.calls,
                self.client.transport,
                self.client.settings,
                agent.id,
                params,
                check_agent=False,
                follow=True,
                monitor=self.monitor,
                timeout_s=self._call_timeout_s,
                wrapup=self._wrapup is not None,
                wrapup_timeout_s=self._wrapup.timeout_s if self._wrapup is not None else 0.0,
                resolve_timeout_s=self._resolve_timeout_s,
                attempt_id=tag,
                on_placed=on_placed,
                on_event=on_event,
                clock=lambda: self._clock().timestamp(),
                sleep=self._sleep,
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

    async def _earlier_conversations(self, contact_id: int, attempt_id: int) -> set[str]:
        """Conversation ids of the contact's other attempts."""
        return {
            a.conversation_id
            for a in await self.db.call(self.journal.attempts, contact_id)
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
        self.progress.placed += 1
        if view is not None:
            view.calls += 1
            view.set(AgentActivity.RINGING_AGENT, contact.phone)
        self.emit(
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
        journal = self.journal
        earlier = [
            a.outcome or ""
            for a in await self.db.call(journal.attempts, contact.id)
            if a.id != attempt_id and a.state is AttemptState.ENDED and a.outcome
        ]
        context = (
            WrapupContext(
                self._wrapup_rules,
                self.rules.window,
                self.rules.zones_for(contact.as_contact()),
                contact.attributes,
            )
            if self._wrapup_rules is not None
            else None
        )
        change = journal_change(result, earlier, self.rules.retry, self._clock(), context)
        where = f"{contact.phone} (line {contact.line})"
        if change.action == "outcome":
            await self.db.call(
                journal.record_outcome,
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
            self.progress.by_outcome[change.outcome] += 1
            self.tell(
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
            self.emit(
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
            await self.db.call(journal.mark_unknown, attempt_id, change.detail)
            self.progress.unknown += 1
            self.tell(attempt_id, "unknown", contact, agent, detail=change.detail)
            self.emit(
                "unknown",
                f"{where}: outcome unknown ({change.detail}); needs review, not re-dialed",
                line=contact.line,
                phone=contact.phone,
                agent=str(agent) if agent is not None else None,
                attempt=attempt_id,
            )
        else:
            await self.db.call(
                journal.mark_not_sent,
                attempt_id,
                change.detail,
                error_code=change.error_code,
                context_id=change.context_id,
                retry_at=change.retry_at,
            )
            step = "not_placed" if result.kind in _NOTHING_SENT else "refused"
            self.tell(attempt_id, step, contact, agent, detail=change.detail)
            self._emit_not_sent(where, contact, result, change)
        if change.placed:
            self._trouble = 0
            self._streak_final.clear()
        if change.in_streak:
            self._streak_final.append(contact.id)
        if change.retire_agent and agent is not None:
            self._retire(agent, result.detail)
        if change.fatal:
            self._set_fatal(result.error or ConfigError(result.detail))
        elif change.trouble:
            self._trouble_seen(result)

    def _add_dnc(self, phone: str) -> None:
        """A wrap-up put the number on the do-not-call list: this run's rules, and the DNC file
        the campaign uses (the journal already holds it, for a resume)."""
        dnc = self.rules.dnc
        self.rules = replace(
            self.rules, dnc=DoNotCallList(dnc.numbers | {phone}, dnc.problems, dnc.file)
        )
        if self.settings.dnc_path:
            try:
                append_dnc(self.settings.dnc_path, {phone})
            except OSError as exc:  # the journal holds it: the next run adds it to the file
                self.emit("dnc_problem", f"could not add {phone} to the do-not-call file: {exc}")

    def _emit_wrapup(
        self, where: str, contact: ContactRecord, attempt_id: int, change: Change
    ) -> None:
        wrapup = change.wrapup
        if wrapup is None:
            self.progress.wrapups_missing += 1
            self.emit(
                "wrapup_missing",
                f"{where}: no wrap-up arrived; listed for review",
                line=contact.line,
                phone=contact.phone,
                attempt=attempt_id,
            )
            return
        self.progress.by_disposition[wrapup.label] += 1
        self.emit(
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
        kind = result.kind
        if kind in (ResultKind.RATE_LIMITED, ResultKind.AGENT_REFUSED, ResultKind.FATAL):
            return
        if kind is ResultKind.NOT_PLACED:
            self.emit(
                "not_placed",
                f"{where}: proven not placed ({result.detail}); back in the queue",
                line=contact.line,
                phone=contact.phone,
            )
            return
        if kind is ResultKind.NOT_SENT:
            message = f"{where}: not sent ({result.detail}); will try again"
        elif kind is ResultKind.INVALID:
            self.progress.refused += 1
            message = f"{where}: not sent, {result.detail}"
        else:
            self.progress.refused += 1
            message = (
                f"{where}: refused by Genesys Cloud ({result.error_code or 'no code'}, contextId "
                f"{result.context_id or 'none'}): {result.detail}"
            )
        self.emit(
            "not_sent",
            message,
            line=contact.line,
            phone=contact.phone,
            code=change.error_code,
            context_id=change.context_id,
        )

    def _trouble_seen(self, result: AttemptResult) -> None:
        self._trouble += 1
        if self._trouble >= self.settings.max_refusals and self.fatal is None:
            last = result.error if isinstance(result.error, GcdialError) else None
            self._set_fatal(CallsRefusedError(self._trouble, last or GcdialError(result.detail)))

    def _set_fatal(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc
            self.emit("error", f"stopping: {exc}")
        self._stop = True
        self.progress.phase = "stopping"
        self._wake.set()

    async def _follow_and_settle(
        self,
        attempt_id: int,
        conversation_id: str,
        agent: PoolAgent | None,
        job: _Job,
        view: AgentView | None,
    ) -> None:
        """Follow a call found in flight at resume to its end, then apply its result."""
        monitor = self.monitor

        def on_event(event: CallEvent) -> None:
            if view is not None:
                _show(view, event)
            self.tell(attempt_id, "progress", job.contact, agent, progress=event.to_dict())

        self.tell(attempt_id, "placed", job.contact, agent, conversation_id=conversation_id)
        if view is not None:
            view.set(AgentActivity.RINGING_AGENT, job.contact.phone)
        try:
            outcome = await monitor.wait(
                conversation_id,
                agent_id=agent.id if agent is not None else None,
                timeout_s=self._call_timeout_s,
                on_event=on_event,
                wrapup=self._wrapup,
            )
            result = _result_of_outcome(outcome, conversation_id)
        except asyncio.CancelledError:
            raise
        except GcdialError as exc:
            result = _result_of_error(exc, placed=True)
        await self._apply(attempt_id, job.contact, agent, result)

    def _start_ticker(self) -> asyncio.Task[None] | None:
        if self.runner.progress_interval_s is None:
            return None

        async def tick(interval: float) -> None:
            while True:
                await asyncio.sleep(interval)
                await self.runner._refresh(self.db, self.journal)

        return asyncio.create_task(tick(self.runner.progress_interval_s))


def _result_of_dial(handle: dialing.Dial) -> AttemptResult:
    """The result of a dial that did not raise: placed (followed), not placed, or unknown."""
    verdict = handle.resolution.verdict
    if verdict is Verdict.NOT_PLACED:
        return AttemptResult(ResultKind.NOT_PLACED, handle.resolution.summary)
    if verdict is Verdict.UNKNOWN or handle.conversation_id is None:
        detail = handle.resolution.summary or "the create-call answer was lost"
        return AttemptResult(ResultKind.UNKNOWN, _clip(detail))
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
    detail = _clip(exc.message)
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


def _clip(text: str) -> str:
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
