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
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from gcdial.campaign.csvinput import (
    ContactReader,
    CsvFileError,
    ValidationReport,
    file_fingerprint,
    validate_csv,
)
from gcdial.campaign.dbthread import JournalThread
from gcdial.campaign.journal import AttemptState, ContactRecord, Journal, JournalError
from gcdial.campaign.pacing import AgentPool, Assignment, Dispatcher, PoolAgent
from gcdial.campaign.pool import Exclusion, NoUsableAgentError, PoolCheck, check_pool
from gcdial.campaign.progress import (
    AgentActivity,
    AgentView,
    BudgetView,
    CampaignEvent,
    Observer,
    Progress,
)
from gcdial.campaign.report import CampaignStatus, campaign_status
from gcdial.campaign.rules import Action, Rules
from gcdial.campaign.settings import CampaignSettings
from gcdial.errors import (
    ApiConnectionError,
    ApiError,
    AuthenticationError,
    AuthError,
    CallOutcomeUnknownError,
    CallsRefusedError,
    ConfigError,
    GcdialError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)
from gcdial.http import MAX_RETRY_AFTER_S

if TYPE_CHECKING:
    from gcdial.client import AsyncClient
    from gcdial.monitor.events import CallEvent
    from gcdial.monitor.follow import CallMonitor

__all__ = [
    "CallsRefusedError",
    "CampaignRunner",
    "RunResult",
    "StopReason",
]

logger = logging.getLogger("gcdial.campaign")

DEFAULT_CALL_TIMEOUT_S: Final = 4 * 3600.0
"""How long one call may last before the runner stops following it (outcome then unknown)."""
NETWORK_RETRY: Final = timedelta(seconds=15)
"""A contact whose call could not be sent (network) waits this long before it is tried again."""
PAGE: Final = 200
"""Due contacts read from the journal at a time."""
HARD_CAP_EXTRA: Final = 2000
"""Contacts held in memory beyond the window when some wait for a busy agent of their own."""
AGENT_REFUSALS: Final = frozenset(
    {"conversation.error.no.user.station", "conversation.error.user.inactive"}
)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class StopReason(StrEnum):
    """Why a run ended."""

    FINISHED = "finished"  # nothing left to dial
    WAITING_FOR_AGENTS = "waiting_for_agents"  # only contacts of agents not in the pool remain
    ENDED = "ended"  # the campaign end time came
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

    ``clock`` (aware UTC datetimes) drives the rules and the journal's times; ``sleep`` waits for
    the next due contact (inject both to test windows and retries without waiting). ``observer``
    is told every event; :attr:`progress` is the snapshot a display draws.
    """

    def __init__(
        self,
        settings: CampaignSettings,
        client: AsyncClient,
        *,
        journal_path: str | Path,
        name: str | None = None,
        observer: Observer | None = None,
        clock: Clock = _utc_now,
        sleep: Sleep = asyncio.sleep,
        monitor_mode: str = "auto",
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        progress_interval_s: float | None = 1.0,
    ) -> None:
        self.settings = settings
        self.client = client
        self.journal_path = Path(journal_path)
        self.name = name or Path(settings.csv_path).stem
        self.progress = Progress(name=self.name)
        self._observer = observer
        self._clock = clock
        self._sleep = sleep
        self._monitor_mode = monitor_mode
        self._call_timeout_s = call_timeout_s
        self._progress_interval_s = progress_interval_s
        self._db = JournalThread()
        self._journal: Journal | None = None
        self._rules: Rules | None = None
        self._monitor: CallMonitor | None = None
        self._dispatcher: Dispatcher[_Job] | None = None
        self._pool: AgentPool | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stop = False
        self._interrupted = False
        self._fatal: BaseException | None = None
        self._trouble = 0
        self._streak_final: list[int] = []
        self._to_release: list[int] = []
        self._waiting_for: Counter[str] = Counter()
        self._resumed = False
        self._ended = False
        self._validation: ValidationReport | None = None
        self._excluded: tuple[Exclusion, ...] = ()

    # Control

    def request_stop(self) -> None:
        """Stop handing out contacts; calls in progress are followed to their end."""
        if not self._stop:
            self._interrupted = True
            self._emit("stopping", "stopping: no new calls; following the calls in progress")
        self._stop = True
        self.progress.phase = "stopping"
        self._wake.set()

    def abort(self) -> None:
        """Stop at once, leaving calls in progress to be reconciled by the next resume."""
        self.request_stop()
        for task in list(self._tasks):
            task.cancel()

    # The run

    async def run(self) -> RunResult:
        """Run the campaign until nothing is left to dial, the end time, a stop, or a failure.

        Bad input (list, journal, do-not-call file, no usable agent) raises before anything is
        dialed. Failures while dialing stop the run and come back in :attr:`RunResult.error`.
        """
        self._rules = self.settings.rules()
        dnc = self._rules.dnc
        for problem in dnc.problems[:20]:
            self._emit("dnc_problem", f"do-not-call list: {problem}", line=problem.line)
        if len(dnc.problems) > 20:
            self._emit("dnc_problem", f"do-not-call list: {len(dnc.problems) - 20} more bad lines")
        try:
            self._journal = await self._db.call(self._open_journal)
            journal = self._journal
            await self._mark_intents_unknown()
            self.progress.phase = "loading contacts"
            self._validation = await self._db.call(self._load_contacts, journal)
            self.progress.phase = "checking agents"
            check = await check_pool(self.client, self.settings.agents)
            self._report_pool(check)
            self._pool = AgentPool(check.agents)
            self._dispatcher = Dispatcher(
                self._pool,
                max_concurrent=self.settings.concurrency,
                clock=self._clock,
                sleep=self._sleep,
            )
            await self._refresh()
            from gcdial.monitor.follow import CallMonitor

            async with CallMonitor(self.client.transport, mode=self._monitor_mode) as monitor:
                self._monitor = monitor
                await self._watch_agents(monitor)
                ticker = self._start_ticker()
                try:
                    await self._follow_in_flight()
                    self.progress.phase = "dialing"
                    await self._dispatch_loop()
                    await self._drain()
                    if self._fatal is not None and self._streak_final:
                        await self._reopen_streak()
                finally:
                    if ticker is not None:
                        ticker.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await ticker
                    self._monitor = None
            await self._refresh()
            status = await self._db.call(campaign_status, journal)
            return RunResult(
                reason=self._reason(status),
                status=status,
                progress=self.progress,
                error=self._fatal,
                resumed=self._resumed,
                validation=self._validation,
                excluded=self._excluded,
                waiting_for=dict(self._waiting_for),
            )
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._journal is not None:
                await self._db.call(self._journal.close)
            self._db.close()

    def _reason(self, status: CampaignStatus) -> StopReason:
        if self._fatal is not None:
            return StopReason.FAILED
        if self._interrupted:
            return StopReason.INTERRUPTED
        if status.finished:
            return StopReason.FINISHED
        if self._ended:
            return StopReason.ENDED
        if self._waiting_for:
            return StopReason.WAITING_FOR_AGENTS
        return StopReason.FINISHED

    # Journal and list

    def _open_journal(self) -> Journal:
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
        if path.exists() and path.stat().st_size > 0:
            journal = Journal.open(path, expect_fingerprint=fingerprint, clock=self._clock)
            self._resumed = True
            try:
                journal.set_meta("settings", json.dumps(self.settings.to_json(), sort_keys=True))
                journal.record_event("campaign.resumed")
            except BaseException:
                journal.close()
                raise
            return journal
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
        return Journal.create(
            path,
            name=self.name,
            csv_path=str(csv_path.resolve()),
            csv_fingerprint=fingerprint,
            settings=self.settings.to_json(),
            clock=self._clock,
        )

    def _load_contacts(self, journal: Journal) -> ValidationReport | None:
        if journal.contacts_loaded:
            return None
        reader = ContactReader(
            self.settings.csv_path,
            phone_column=self.settings.phone_column,
            default_country=self.settings.default_country,
        )
        fresh = not self._resumed
        try:
            journal.add_contacts(reader)
        except CsvFileError:
            if fresh:
                # Nothing was dialed: drop the half-loaded journal so the fixed list starts clean.
                journal.close()
                self._journal = None
                for suffix in ("", "-wal", "-shm", ".lock"):
                    with contextlib.suppress(OSError):
                        Path(str(self.journal_path) + suffix).unlink()
            raise
        report = reader.report
        journal.add_skipped_rows(report.problems)
        journal.finish_loading(rows=report.rows, valid=report.valid, refused=report.problem_count)
        return report

    async def _mark_intents_unknown(self) -> None:
        journal = self._require_journal()
        for attempt in await self._db.call(journal.in_flight):
            if attempt.state is not AttemptState.INTENT:
                continue
            detail = (
                "the previous run stopped after deciding to dial and before Genesys Cloud's "
                "answer was recorded: the call may have been placed, so it is not re-dialed"
            )
            await self._db.call(journal.mark_unknown, attempt.id, detail)
            contact = await self._db.call(journal.contact, attempt.contact_id)
            self.progress.unknown += 1
            self._emit(
                "unknown",
                f"{contact.phone} (line {contact.line}): outcome unknown after a restart; "
                "needs review, not re-dialed",
                line=contact.line,
                phone=contact.phone,
                attempt=attempt.id,
                reconciled=True,
            )

    async def _reopen_streak(self) -> None:
        journal = self._require_journal()
        for contact_id in self._streak_final:
            await self._db.call(
                journal.reopen, contact_id, "refused while the API refused every call; retry"
            )
        self._streak_final.clear()

    # Agents

    def _report_pool(self, check: PoolCheck) -> None:
        self._excluded = check.excluded
        for excluded in check.excluded:
            self._emit(
                "agent_excluded",
                f"agent {excluded.agent} excluded: {excluded.message}",
                agent=excluded.agent,
                reason=excluded.reason,
            )
        for note in check.notes:
            self._emit("note", note)
        for agent in check.agents:
            self.progress.agents[agent.id] = AgentView(agent.id, str(agent))

    async def _watch_agents(self, monitor: CallMonitor) -> None:
        """Subscribe to every agent's calls before the first dial (one PUT for the lot)."""
        pool = self._require_pool()
        await monitor.watch_agents(agent.id for agent in pool.agents)

    def _retire(self, agent: PoolAgent, why: str) -> None:
        dispatcher = self._require_dispatcher()
        if dispatcher.pool.is_retired(agent.id):
            return
        orphans = dispatcher.retire(agent.id)
        if orphans:
            self._waiting_for[str(agent)] += len(orphans)
        view = self.progress.agents.get(agent.id)
        if view is not None:
            view.set(AgentActivity.RETIRED)
        self._emit(
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
        journal = self._require_journal()
        dispatcher = self._require_dispatcher()
        for attempt in await self._db.call(journal.in_flight):
            if attempt.state is not AttemptState.ACCEPTED or attempt.conversation_id is None:
                continue
            contact = await self._db.call(journal.contact, attempt.contact_id)
            job = _Job(contact, attempt.id, attempt.conversation_id)
            self._emit(
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

    async def _dispatch_loop(self) -> None:
        journal = self._require_journal()
        dispatcher = self._require_dispatcher()
        rules = self._require_rules()
        while not self._stop:
            self._wake.clear()
            if self._to_release:
                released, self._to_release = self._to_release, []
                await self._db.call(journal.release, released)
            now = self._clock()
            if rules.end_at is not None and now >= rules.end_at:
                self._ended = True
                self._emit("ended", "the campaign end time has come: no new calls")
                break
            await self._top_up()
            while (assignment := dispatcher.poll()) is not None:
                self._spawn(self._run_assignment(assignment))
            if self._stop:
                break
            delay: float | None = None
            if dispatcher.queued == 0 and dispatcher.live == 0 and not self._tasks:
                due = await self._db.call(journal.next_due_time)
                self.progress.next_due = due
                if due is None:
                    break
                if rules.end_at is not None and due >= rules.end_at:
                    self._ended = True
                    self._emit(
                        "ended",
                        "the remaining contacts are due after the campaign end time",
                    )
                    break
                delay = max(0.0, (due - self._clock()).total_seconds())
            elif dispatcher.pool.free() and dispatcher.live < dispatcher.max_concurrent:
                due = await self._db.call(journal.next_due_time)
                self.progress.next_due = due
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
        journal = self._require_journal()
        dispatcher = self._require_dispatcher()
        rules = self._require_rules()
        window = max(2 * dispatcher.max_concurrent, 16)
        while True:
            queued = dispatcher.queued
            starved = bool(dispatcher.pool.free()) and queued > 0
            if queued >= window + HARD_CAP_EXTRA or (queued >= window and not starved):
                return
            now = self._clock()
            rows = await self._db.call(journal.due_now, now, limit=PAGE)
            if not rows:
                return
            held: list[int] = []
            deferred: list[tuple[int, datetime, str]] = []
            skipped: list[tuple[int, str, str]] = []
            for contact in rows:
                decision = rules.check(contact.as_contact(), now)
                if decision.action is Action.SKIP:
                    skipped.append((contact.id, decision.outcome or "skipped", decision.reason))
                    self._emit(
                        "skipped",
                        f"{contact.phone} (line {contact.line}): skipped, {decision.reason}",
                        line=contact.line,
                        phone=contact.phone,
                        outcome=decision.outcome,
                    )
                elif decision.action is Action.DEFER and decision.at is not None:
                    deferred.append((contact.id, decision.at, decision.reason))
                    self._emit(
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
                    self._emit(
                        "after_end",
                        f"{contact.phone} (line {contact.line}): left pending, {decision.reason}",
                        line=contact.line,
                        phone=contact.phone,
                    )
            await self._db.call(journal.hold, held)
            await self._db.call(journal.skip_many, skipped)
            await self._db.call(journal.defer_many, deferred)

    def _queue(self, contact: ContactRecord) -> None:
        dispatcher = self._require_dispatcher()
        if contact.agent is None:
            dispatcher.add(_Job(contact))
            return
        agent = dispatcher.pool.find(contact.agent)
        if agent is None or dispatcher.pool.is_retired(agent.id):
            key = contact.agent
            if not self._waiting_for[key]:
                self._emit(
                    "waiting_for_agent",
                    f"contacts for agent {key} wait: {key} is not in this run's pool",
                    agent=key,
                )
            self._waiting_for[key] += 1
            return
        dispatcher.add(_Job(contact), agent=agent.id)

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
        try:
            if job.conversation_id is not None and job.attempt_id is not None:
                await self._follow_and_settle(job.attempt_id, job.conversation_id, agent, job, view)
            else:
                await self._place(job, agent, view)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: stop dialing; the journal stays consistent
            logger.exception("campaign worker failed")
            self._set_fatal(exc)
        finally:
            self._require_dispatcher().finish(assignment)
            if view is not None and view.activity is not AgentActivity.RETIRED:
                view.set(AgentActivity.IDLE)
            self._to_release.append(job.contact.id)
            self._wake.set()

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

    async def _place(self, job: _Job, agent: PoolAgent, view: AgentView | None) -> None:
        journal = self._require_journal()
        contact = job.contact
        try:
            attempt_id = await self._db.call(
                journal.begin_attempt, contact.id, agent_id=agent.id, agent=str(agent)
            )
        except JournalError as exc:
            logger.warning("not dialing line %d: %s", contact.line, exc)
            return
        if view is not None:
            view.set(AgentActivity.DIALING, contact.phone)
        where = f"{contact.phone} (line {contact.line})"
        try:
            created = await self.client.calls.create(
                agent.id,
                to=contact.phone,
                caller_id=self.settings.caller_id,
                caller_id_name=self.settings.caller_id_name,
                attributes=dict(contact.attributes) or None,
                check_agent=False,
            )
        except CallOutcomeUnknownError as exc:
            await self._unknown(
                attempt_id,
                exc,
                f"{where}: outcome unknown ({exc.message}); needs review, not re-dialed",
                line=contact.line,
                phone=contact.phone,
                agent=str(agent),
                attempt=attempt_id,
            )
            return
        except RateLimitedError as exc:
            # A 429 placed nothing, so trying sooner than asked is safe; a wait past the cap
            # (the rate budget's own) is not believed, and could not even be added to a date.
            wait_s = min(max(exc.retry_after or 1.0, 1.0), MAX_RETRY_AFTER_S)
            retry_at = self._clock() + timedelta(seconds=wait_s)
            await self._db.call(
                journal.mark_not_sent,
                attempt_id,
                "rate limited (429) after retrying; tried again later",
                error_code=exc.code,
                context_id=exc.context_id,
                retry_at=retry_at,
            )
            return
        except ApiError as exc:
            await self._refused(attempt_id, job, agent, exc)
            return
        except ApiConnectionError as exc:
            await self._db.call(
                journal.mark_not_sent,
                attempt_id,
                f"not sent: {exc.message}",
                retry_at=self._clock() + NETWORK_RETRY,
            )
            self._emit(
                "not_sent",
                f"{where}: not sent ({exc.message}); will try again",
                line=contact.line,
                phone=contact.phone,
            )
            self._trouble_seen(exc)
            return
        except (AuthError, ConfigError) as exc:
            await self._db.call(
                journal.mark_not_sent,
                attempt_id,
                f"not sent: {exc.message}",
                retry_at=self._clock(),
            )
            self._set_fatal(exc)
            return
        except InputError as exc:
            await self._db.call(journal.mark_not_sent, attempt_id, exc.message)
            self.progress.refused += 1
            self._emit(
                "not_sent",
                f"{where}: not sent, {exc.message}",
                line=contact.line,
                phone=contact.phone,
            )
            return
        except GcdialError as exc:
            # Anything else after the intent may have reached Genesys: never re-dial it.
            await self._unknown(
                attempt_id,
                exc,
                f"{where}: outcome unknown ({exc.message})",
                line=contact.line,
                phone=contact.phone,
            )
            return
        await self._db.call(journal.mark_accepted, attempt_id, created.id)
        self._trouble = 0
        self._streak_final.clear()
        self.progress.placed += 1
        if view is not None:
            view.calls += 1
        self._emit(
            "placed",
            f"{where}: call placed by {agent} ({created.id})",
            line=contact.line,
            phone=contact.phone,
            agent=str(agent),
            conversation_id=created.id,
            attempt=attempt_id,
        )
        await self._follow_and_settle(attempt_id, created.id, agent, job, view)

    async def _unknown(self, attempt_id: int, exc: GcdialError, message: str, **data: Any) -> None:
        """The create-call may have reached Genesys: set the attempt aside for review."""
        await self._db.call(self._require_journal().mark_unknown, attempt_id, _short(exc))
        self.progress.unknown += 1
        self._emit("unknown", message, **data)
        self._trouble_seen(exc)

    async def _refused(self, attempt_id: int, job: _Job, agent: PoolAgent, exc: ApiError) -> None:
        journal = self._require_journal()
        contact = job.contact
        code = exc.code or ""
        where = f"{contact.phone} (line {contact.line})"
        now = self._clock()
        if code in AGENT_REFUSALS or isinstance(exc, NotFoundError):
            await self._db.call(
                journal.mark_not_sent,
                attempt_id,
                f"refused for agent {agent}: {exc.message}",
                error_code=exc.code,
                context_id=exc.context_id,
                retry_at=now,
            )
            self._retire(agent, exc.message)
            return
        systemic = isinstance(exc, AuthenticationError | PermissionDeniedError) or code in (
            "not.a.user",
        )
        await self._db.call(
            journal.mark_not_sent,
            attempt_id,
            exc.message,
            error_code=exc.code,
            context_id=exc.context_id,
            retry_at=now if systemic else None,
        )
        if not systemic:
            self._streak_final.append(contact.id)
        self.progress.refused += 1
        self._emit(
            "not_sent",
            f"{where}: refused by Genesys Cloud (HTTP {exc.status} {code or ''}, contextId "
            f"{exc.context_id or 'none'}): {exc.message}",
            line=contact.line,
            phone=contact.phone,
            status=exc.status,
            code=exc.code,
            context_id=exc.context_id,
        )
        self._trouble_seen(exc)

    def _trouble_seen(self, exc: GcdialError) -> None:
        self._trouble += 1
        if self._trouble >= self.settings.max_refusals and self._fatal is None:
            self._set_fatal(CallsRefusedError(self._trouble, exc))

    def _set_fatal(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
            self._emit("error", f"stopping: {exc}")
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
        from gcdial.errors import CallWaitTimeoutError

        monitor = self._monitor
        assert monitor is not None

        def on_event(event: CallEvent) -> None:
            if view is not None:
                _show(view, event)

        if view is not None:
            view.set(AgentActivity.RINGING_AGENT, job.contact.phone)
        code: str | None = None
        try:
            outcome = await monitor.wait(
                conversation_id,
                agent_id=agent.id if agent is not None else None,
                timeout_s=self._call_timeout_s,
                on_event=on_event,
            )
            kind = outcome.kind.value
            detail = outcome.reason
            code = outcome.error.code if outcome.error is not None else None
        except CallWaitTimeoutError as exc:
            kind, detail = "unknown", exc.message
        except NotFoundError:
            kind, detail = "unknown", f"Genesys Cloud no longer knows call {conversation_id}"
        except GcdialError as exc:
            kind, detail = "unknown", f"lost track of the call: {exc.message}"
        await self._settle(attempt_id, job.contact, kind, detail, code, agent)

    async def _settle(
        self,
        attempt_id: int,
        contact: ContactRecord,
        kind: str,
        detail: str,
        code: str | None,
        agent: PoolAgent | None,
    ) -> None:
        journal = self._require_journal()
        policy = self._require_rules().retry
        earlier = [
            a
            for a in await self._db.call(journal.attempts, contact.id)
            if a.id != attempt_id and a.state is AttemptState.ENDED and a.outcome
        ]
        customer = sum(1 for a in earlier if policy.counts_as_attempt(a.outcome or ""))
        agent_side = sum(1 for a in earlier if (a.outcome or "") in policy.agent_side)
        customer += 1 if policy.counts_as_attempt(kind) else 0
        agent_side += 1 if kind in policy.agent_side else 0
        decision = policy.after(
            kind, attempts=customer, agent_failures=agent_side, now=self._clock()
        )
        retry_at = decision.at if decision.retry else None
        await self._db.call(
            journal.record_outcome,
            attempt_id,
            kind,
            error_code=code,
            detail=_detail(detail, decision.reason, retried=decision.retry),
            retry_at=retry_at,
        )
        self.progress.by_outcome[kind] += 1
        then = f"; retry at {retry_at:%H:%M:%S} UTC" if retry_at is not None else ""
        self._emit(
            "outcome",
            f"{contact.phone} (line {contact.line}): {kind}{then}"
            + (f" [{agent}]" if agent is not None else ""),
            line=contact.line,
            phone=contact.phone,
            outcome=kind,
            agent=str(agent) if agent is not None else None,
            attempt=attempt_id,
            retry_at=retry_at.isoformat() if retry_at is not None else None,
            detail=detail,
        )

    # Progress

    def _start_ticker(self) -> asyncio.Task[None] | None:
        if self._progress_interval_s is None:
            return None

        async def tick(interval: float) -> None:
            while True:
                await asyncio.sleep(interval)
                await self._refresh()

        return asyncio.create_task(tick(self._progress_interval_s))

    async def _refresh(self) -> None:
        """Re-read the counts from the journal and the budget from the client."""
        journal = self._journal
        if journal is None:
            return
        counts = await self._db.call(journal.count_by, "contacts", "status")
        self.progress.by_status = Counter(counts)
        self.progress.total = sum(counts.values())
        budget = self.client.budget
        paused = budget.paused_until
        self.progress.budget = BudgetView(
            remaining=budget.remaining,
            limit=budget.limit,
            paused_s=max(0.0, paused - time.monotonic()) if paused is not None else 0.0,
            rate_limited=budget.rate_limited_count,
        )

    def _emit(self, kind: str, message: str, **data: Any) -> None:
        if self._observer is not None:
            self._observer(CampaignEvent(kind, message, data))

    # Invariants

    def _require_journal(self) -> Journal:
        assert self._journal is not None, "the journal is not open"
        return self._journal

    def _require_dispatcher(self) -> Dispatcher[_Job]:
        assert self._dispatcher is not None, "the dispatcher is not ready"
        return self._dispatcher

    def _require_pool(self) -> AgentPool:
        assert self._pool is not None, "the agent pool is not ready"
        return self._pool

    def _require_rules(self) -> Rules:
        assert self._rules is not None, "the rules are not loaded"
        return self._rules


def _detail(outcome: str, decision: str, *, retried: bool) -> str:
    """The outcome's reason, plus what happens next when that is news (a retry, giving up)."""
    if not outcome:
        return decision
    if not retried and decision.startswith("final outcome"):
        return outcome
    return f"{outcome}; {decision}"


def _short(exc: GcdialError) -> str:
    text = exc.message
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
