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

This module prepares a run (steps 1, 3 and 4) and reports how it ended; the run itself is wired
from :mod:`~gcdial.campaign.resolver` (step 2), :mod:`~gcdial.campaign.dispatch` (step 5) and
:mod:`~gcdial.campaign.placer` (each dial), over :mod:`~gcdial.campaign.run_state`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from gcdial._shared import DEFAULT_RESOLVE_TIMEOUT_S
from gcdial.campaign.csvinput import (
    ContactReader,
    CsvFileError,
    ValidationReport,
    file_fingerprint,
    validate_csv,
)
from gcdial.campaign.dbthread import JournalThread
from gcdial.campaign.dispatch import DispatchLoop
from gcdial.campaign.journal import ContactRecord, Journal
from gcdial.campaign.journal_source import FileJournal, JournalSource
from gcdial.campaign.pacing import AgentPool, Dispatcher, PoolAgent
from gcdial.campaign.placer import Placer, append_dnc
from gcdial.campaign.pool import Exclusion, PoolCheck, check_pool
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
from gcdial.campaign.resolver import (
    IntentLadder,
    Resolver,
    mark_intents_unknown,
    settle_intents,
)
from gcdial.campaign.rules import DoNotCallList, Rules
from gcdial.campaign.run_state import Clock, Job, RunContext, RunState, Sleep, StopReason
from gcdial.campaign.settings import CampaignSettings
from gcdial.errors import CallsRefusedError
from gcdial.gate import AgentGate, ReadinessGate
from gcdial.monitor import CallMonitor

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
AGENT_STATES_META: Final = "agent_states"
"""The journal meta key holding the pool as the last run left it (idle, retired and why)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


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

    The runner holds the configuration; a run is one :class:`_Run` (a dispatch loop, a placer and
    a resolver over one :class:`~gcdial.campaign.run_state.RunState`), created by :meth:`run` once
    the journal, the agents and the notifications channel are ready.
    """

    def __init__(
        self,
        settings: CampaignSettings,
        client: AsyncClient,
        *,
        journal_path: str | Path | None = None,
        journals: JournalSource | None = None,
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
        intent_ladder: IntentLadder | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        if journals is None:
            if journal_path is None:
                raise TypeError("CampaignRunner needs journal_path or journals")
            journals = FileJournal(Path(journal_path))
        # Where the journal is: a file beside the list (the CLI), or a campaign's rows in a
        # shared database (the service).
        self.journals: JournalSource = journals
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
        # Where a live witness exists (the service), intents an earlier run left go through
        # its ladder; else they are marked unknown for a person.
        self.intent_ladder = intent_ladder
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
            self._run.state.stop(interrupted=True)

    def abort(self) -> None:
        """Stop at once, leaving calls in progress to be reconciled by the next resume."""
        self.request_stop()
        if self._run is not None:
            self._run.state.cancel()

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
        run: _Run | None = None
        try:
            journal, resumed = await db.call(self._open_journal)
            to_close = journal
            if resumed:
                # The rules given now (a wider --window...) decide when they may be dialed.
                await db.call(journal.pending.redecide_deferrals)
            if self.intent_ladder is not None:
                await settle_intents(
                    db,
                    journal,
                    self.intent_ladder,
                    self.gate,
                    attempt_key=self.client.settings.attempt_attribute,
                    progress=self.progress,
                    emit=self.emit,
                    tell=self.tell,
                )
            else:
                await mark_intents_unknown(
                    db, journal, progress=self.progress, emit=self.emit, tell=self.tell
                )
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
            dispatcher: Dispatcher[Job] = Dispatcher(
                pool,
                max_concurrent=self.settings.concurrency,
                clock=self.clock,
                sleep=self.sleep,
            )
            await self._refresh(db, journal)
            async with CallMonitor(self.client.transport, mode=self.monitor_mode) as monitor:
                run = _Run(
                    self,
                    db=db,
                    journal=journal,
                    rules=rules,
                    pool=pool,
                    dispatcher=dispatcher,
                    monitor=monitor,
                )
                self._run = run
                state = run.state
                if self._stop_requested:
                    state.stop(interrupted=True)
                try:
                    await run.go()
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
            if run is not None:
                await run.cancel_and_wait()
            if to_close is not None:
                await db.call(to_close.close)
            db.close()

    # Journal and list

    def _with_journal_dnc(self, journal: Journal, rules: Rules) -> Rules:
        """The rules with the numbers earlier wrap-ups put on the do-not-call list (kept in the
        journal, so a resume never dials them, whether or not a DNC file is configured); the
        DNC file gains any a crash kept from reaching it."""
        numbers = journal.attempts.dnc_numbers()
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
        journals = self.journals
        if journals.exists():
            journal = journals.open(expect_fingerprint=fingerprint, clock=self.clock)
            try:
                journal.verify()
                journal.set_meta("settings", json.dumps(self.settings.to_json(), sort_keys=True))
                journal.events.record("campaign.resumed")
            except BaseException:
                journal.close()
                raise
            return journal, True
        journals.check_creatable()
        if self.settings.strict:
            validate_csv(
                csv_path,
                phone_column=self.settings.phone_column,
                default_country=self.settings.default_country,
                strict=True,
            )
        created = journals.create(
            name=self.name,
            csv_path=str(csv_path.resolve()),
            csv_fingerprint=fingerprint,
            settings=self.settings.to_json(),
            clock=self.clock,
        )
        return created, False

    def _load_contacts(self, journal: Journal, resumed: bool = False) -> ValidationReport | None:
        if journal.contacts.loaded:
            return None
        reader = ContactReader(
            self.settings.csv_path,
            phone_column=self.settings.phone_column,
            default_country=self.settings.default_country,
        )
        try:
            journal.contacts.add(reader)
        except CsvFileError:
            if not resumed:
                # Nothing was dialed: drop the half-loaded journal so the fixed list starts clean.
                journal.discard()
            raise
        report = reader.report
        journal.contacts.add_skipped_rows(report.problems)
        journal.contacts.finish_loading(
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
        counts = await db.call(journal.contacts.count_by, "status")
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
    """One run, wired: created by :meth:`CampaignRunner.run` once the journal, the agent pool and
    the notifications channel are ready, gone when it returns. Its parts (the dispatch loop, the
    placer, the resolver) share one :class:`RunState`."""

    def __init__(
        self,
        runner: CampaignRunner,
        *,
        db: JournalThread,
        journal: Journal,
        rules: Rules,
        pool: AgentPool,
        dispatcher: Dispatcher[Job],
        monitor: CallMonitor,
    ) -> None:
        self._runner = runner
        self._ctx = RunContext(
            db=db,
            journal=journal,
            client=runner.client,
            settings=runner.settings,
            monitor=monitor,
            progress=runner.progress,
            emit=runner.emit,
            tell=runner.tell,
            clock=runner.clock,
            sleep=runner.sleep,
            call_timeout_s=runner.call_timeout_s,
            resolve_timeout_s=runner.resolve_timeout_s,
        )
        self.state = RunState(
            rules=rules, dispatcher=dispatcher, progress=runner.progress, emit=runner.emit
        )
        self._pool = pool
        self._placer = Placer(self._ctx, self.state, runner.gate)
        self._resolver = Resolver(self._ctx, self.state, self._placer)
        self._dispatch = DispatchLoop(
            self._ctx, self.state, self._placer, until_deferred=runner.until_deferred
        )

    async def go(self) -> None:
        """Follow what was left in flight, resolve what was left unknown, dial until done."""
        state = self.state
        # Every agent's calls are subscribed before the first dial (one PUT for the lot).
        await self._ctx.monitor.watch_agents(agent.id for agent in self._pool.agents)
        ticker = self._start_ticker()
        try:
            async with contextlib.aclosing(self._resolver.in_flight()) as in_flight:
                async for job, agent_id in in_flight:
                    self._dispatch.adopt(job, agent_id)
            state.spawn(self._background(self._resolver.resolve_unknowns(), "resolving unknowns"))
            self._ctx.progress.phase = "dialing"
            await self._dispatch.run()
            await state.drain()
            if state.fatal is not None:
                await self._placer.reopen_streak()
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker

    async def cancel_and_wait(self) -> None:
        """Cancel what still runs and wait for it to finish."""
        self.state.cancel()
        if self.state.tasks:
            await asyncio.gather(*self.state.tasks, return_exceptions=True)

    async def _background(self, work: Coroutine[Any, Any, None], what: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: say so, but the dialing goes on (nothing was half-done)
            logger.exception("%s failed", what)
        finally:
            self.state.wake.set()

    def _start_ticker(self) -> asyncio.Task[None] | None:
        runner = self._runner
        if runner.progress_interval_s is None:
            return None
        db, journal = self._ctx.db, self._ctx.journal

        async def tick(interval: float) -> None:
            while True:
                await asyncio.sleep(interval)
                await runner._refresh(db, journal)

        return asyncio.create_task(tick(runner.progress_interval_s))
