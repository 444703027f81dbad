"""``gcdial campaign run|resume|status|report``: dial a contact list through a pool of agents.

``run CSV`` starts a campaign, or resumes it when its journal already exists (the options given
then replace the stored ones; the others keep their stored values). ``resume JOURNAL`` resumes
from the journal alone. Ctrl-C or SIGTERM stops gracefully (no new calls, calls in progress
followed to their end); a second Ctrl-C leaves at once (calls in progress are reconciled by the
next resume).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from gcdial.cli.exitcodes import ExitCode
from gcdial.cli.options import JsonOpt, SandboxOpt, VerboseOpt
from gcdial.cli.session import Session, session

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live

    from gcdial.campaign.progress import CampaignEvent, Progress
    from gcdial.campaign.runner import CampaignRunner, RunResult
    from gcdial.campaign.settings import CampaignSettings

app = typer.Typer(
    name="campaign",
    help="Dial a CSV contact list through a pool of agents, safely and resumably.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


class ReportFormat(StrEnum):
    """Formats of ``campaign report``."""

    CSV = "csv"
    JSON = "json"


CsvArg = Annotated[
    Path,
    typer.Argument(help="The contact list: a UTF-8 CSV with a header.", show_default=False),
]
JournalArg = Annotated[
    Path, typer.Argument(help="The campaign's journal file (.db).", show_default=False)
]
AgentsOpt = Annotated[
    str | None,
    typer.Option(
        "--agents", help="Agents by email or user id, comma-separated.", show_default=False
    ),
]
AgentsFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--agents-file", help="File with one agent (email or id) per line.", show_default=False
    ),
]
JournalOpt = Annotated[
    Path | None,
    typer.Option(
        "--journal",
        help="Journal file (default: next to the list, contacts.csv -> contacts.db).",
        show_default=False,
    ),
]
PhoneColumnOpt = Annotated[
    str | None,
    typer.Option("--phone-column", help="Name of the phone column.", show_default=False),
]
CountryOpt = Annotated[
    str | None,
    typer.Option(
        "--default-country",
        help="Country of national numbers (US, GB, ...). Default US.",
        show_default=False,
    ),
]
StrictOpt = Annotated[
    bool | None,
    typer.Option(
        "--strict/--no-strict",
        help="Refuse to start on any bad CSV row or DNC line.",
        show_default=False,
    ),
]
WindowOpt = Annotated[
    str | None,
    typer.Option(
        "--window",
        help="Calling window in the customer's local time. Default 08:00-21:00.",
        show_default=False,
    ),
]
FallbackTzOpt = Annotated[
    str | None,
    typer.Option(
        "--fallback-timezone",
        help="Time zone for numbers with no known zone (IANA name).",
        show_default=False,
    ),
]
UnknownTzOpt = Annotated[
    str | None,
    typer.Option(
        "--unknown-timezone",
        help="Numbers with no known zone: skip (default) or any (dial at any hour).",
        show_default=False,
    ),
]
DncOpt = Annotated[
    Path | None,
    typer.Option("--dnc", help="Do-not-call file: one number per line.", show_default=False),
]
MaxAttemptsOpt = Annotated[
    int | None,
    typer.Option("--max-attempts", help="Attempts per contact. Default 3.", show_default=False),
]
RetryNoAnswerOpt = Annotated[
    str | None,
    typer.Option(
        "--retry-no-answer", help="Delay before retrying no answer. Default 1h.", show_default=False
    ),
]
RetryBusyOpt = Annotated[
    str | None,
    typer.Option(
        "--retry-busy", help="Delay before retrying busy. Default 10m.", show_default=False
    ),
]
EndOpt = Annotated[
    str | None,
    typer.Option(
        "--end",
        help="Campaign end time, ISO 8601 with offset (2026-03-02T18:00-05:00).",
        show_default=False,
    ),
]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        help="At most N calls at once (default: one per agent).",
        show_default=False,
    ),
]
FromOpt = Annotated[
    str | None,
    typer.Option("--from", help="Caller id shown to the customers.", show_default=False),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="List what would be dialed, deferred or skipped and why; send nothing.",
        show_default=False,
    ),
]


def _agents(agents: str | None, agents_file: Path | None) -> tuple[str, ...] | None:
    from gcdial.campaign.settings import parse_agents, read_agents_file
    from gcdial.errors import InputError

    if agents is not None and agents_file is not None:
        raise InputError(
            "Give the agents with --agents or with --agents-file, not both.",
            hint="Put them all in the file, or all on the command line.",
        )
    if agents_file is not None:
        return tuple(read_agents_file(agents_file))
    if agents is not None:
        listed = parse_agents(agents)
        if not listed:
            raise InputError(
                "--agents lists no agent.", hint="Give emails or user ids: a@x.com,b@y.com."
            )
        return tuple(listed)
    return None


def _stored_settings(journal_path: Path) -> CampaignSettings | None:
    """The settings stored in an existing journal (read without the lock), else None."""
    from gcdial.campaign.journal import Journal
    from gcdial.campaign.settings import CampaignSettings

    if not Journal.exists(journal_path):
        return None
    with Journal.open(journal_path, read_only=True) as journal:
        stored = journal.settings()
        info = journal.info()
    if not stored:
        return CampaignSettings(csv_path=info.csv_path)
    return CampaignSettings.from_json(stored)


def _settings(base: CampaignSettings | None, csv: Path | None, **given: Any) -> CampaignSettings:
    from gcdial.campaign.settings import CampaignSettings, parse_duration
    from gcdial.errors import InputError

    changes = dict(given)
    for key, option in (
        ("retry_no_answer_s", "--retry-no-answer"),
        ("retry_busy_s", "--retry-busy"),
    ):
        if changes.get(key) is not None:
            changes[key] = parse_duration(changes[key], option=option).total_seconds()
    for key in ("dnc_path",):
        if changes.get(key) is not None:
            changes[key] = str(Path(changes[key]).resolve())
    if base is None:
        if csv is None:
            raise InputError("No contact list.", hint="Give the CSV file.")
        base = CampaignSettings(csv_path=str(csv.resolve()))
    elif csv is not None:
        changes["csv_path"] = str(csv.resolve())
    return base.with_changes(**changes)


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    csv: CsvArg,
    agents: AgentsOpt = None,
    agents_file: AgentsFileOpt = None,
    journal: JournalOpt = None,
    phone_column: PhoneColumnOpt = None,
    default_country: CountryOpt = None,
    strict: StrictOpt = None,
    window: WindowOpt = None,
    fallback_timezone: FallbackTzOpt = None,
    unknown_timezone: UnknownTzOpt = None,
    dnc: DncOpt = None,
    max_attempts: MaxAttemptsOpt = None,
    retry_no_answer: RetryNoAnswerOpt = None,
    retry_busy: RetryBusyOpt = None,
    end: EndOpt = None,
    concurrency: ConcurrencyOpt = None,
    from_number: FromOpt = None,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
    sandbox: SandboxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Dial the contacts of CSV through the agents; resumes if the campaign's journal exists.

    Exit 0 when every contact is settled, 5 when some need review (outcome unknown), 7 when
    contacts wait for an agent who cannot take calls, 130 after Ctrl-C; other codes as for
    `gcdial call`.
    """
    from gcdial.campaign.settings import default_journal_path

    with session(ctx, json=json, sandbox=sandbox, verbose=verbose) as run:
        journal_path = journal or default_journal_path(csv)
        listed = _agents(agents, agents_file)
        base = _stored_settings(journal_path)
        settings = _settings(
            base,
            csv,
            agents=listed,
            phone_column=phone_column,
            default_country=default_country,
            strict=strict,
            window=window,
            fallback_timezone=fallback_timezone,
            unknown_timezone=unknown_timezone,
            dnc_path=dnc,
            max_attempts=max_attempts,
            retry_no_answer_s=retry_no_answer,
            retry_busy_s=retry_busy,
            end=end,
            concurrency=concurrency,
            caller_id=from_number,
        )
        if dry_run:
            _dry_run(run, settings, journal_path)
            return
        raise typer.Exit(int(_execute(run, settings, journal_path)))


@app.command("resume")
def resume_cmd(
    ctx: typer.Context,
    journal: JournalArg,
    agents: AgentsOpt = None,
    agents_file: AgentsFileOpt = None,
    window: WindowOpt = None,
    dnc: DncOpt = None,
    max_attempts: MaxAttemptsOpt = None,
    retry_no_answer: RetryNoAnswerOpt = None,
    retry_busy: RetryBusyOpt = None,
    end: EndOpt = None,
    concurrency: ConcurrencyOpt = None,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
    sandbox: SandboxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Resume the campaign of JOURNAL with its stored settings (options given replace them).

    Calls left in flight are reconciled first: followed to their end when Genesys accepted them,
    set aside for review (never re-dialed) when the answer was lost.
    """
    from gcdial.campaign.journal import JournalError

    with session(ctx, json=json, sandbox=sandbox, verbose=verbose) as run:
        base = _stored_settings(journal)
        if base is None:
            raise JournalError(
                f"No journal at {journal}.",
                hint="Check the path, or start the campaign with `gcdial campaign run CSV`.",
            )
        settings = _settings(
            base,
            None,
            agents=_agents(agents, agents_file),
            window=window,
            dnc_path=dnc,
            max_attempts=max_attempts,
            retry_no_answer_s=retry_no_answer,
            retry_busy_s=retry_busy,
            end=end,
            concurrency=concurrency,
        )
        if dry_run:
            _dry_run(run, settings, journal)
            return
        raise typer.Exit(int(_execute(run, settings, journal)))


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    journal: JournalArg,
    json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Counts of a campaign (safe while it runs): contacts by status and outcome, attempts."""
    from gcdial.campaign.journal import Journal
    from gcdial.campaign.report import campaign_status

    with session(ctx, json=json, verbose=verbose) as run:
        with Journal.open(journal, read_only=True) as opened:
            status = campaign_status(opened)
        run.output.result(status.as_dict(), Text("\n".join(status.lines())))


@app.command("report")
def report_cmd(
    ctx: typer.Context,
    journal: JournalArg,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="csv or json.", case_sensitive=False)
    ] = ReportFormat.CSV,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this file instead of stdout.", show_default=False
        ),
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """One row per contact: final outcome, attempts, agent, conversation id, times."""
    from gcdial.campaign.journal import Journal
    from gcdial.campaign.report import write_report

    with session(ctx, verbose=verbose) as run, Journal.open(journal, read_only=True) as opened:
        if output is None:
            write_report(opened, sys.stdout, fmt=fmt.value)
            sys.stdout.flush()
            return
        with _writable(output) as out:
            count = write_report(opened, out, fmt=fmt.value)
        run.output.ok(f"wrote {count} row(s) to {output}")


@contextlib.contextmanager
def _writable(path: Path) -> Iterator[Any]:
    from gcdial.errors import InputError

    try:
        handle = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(
            f"Cannot write the report to {path}: {exc.strerror}.",
            hint="Give a path in an existing, writable folder.",
        ) from None
    with handle:
        yield handle


def _dry_run(run: Session, settings: CampaignSettings, journal_path: Path) -> None:
    from gcdial.campaign.plan import PlanSummary, plan

    summary = PlanSummary()
    lines = plan(
        settings,
        now=datetime.now(UTC),
        journal_path=journal_path,
        agents=settings.agents or None,
        summary=summary,
    )
    for line in lines:
        run.output.result(line.to_dict(), Text(str(line)))
    run.output.result(summary.as_dict(), Text(_plan_summary(summary, settings)))
    if not run.output.json_mode:
        run.output.say("dry run: nothing was sent and nothing was written.", style="dim")


def _plan_summary(summary: Any, settings: CampaignSettings) -> str:
    counts = ", ".join(f"{action} {n}" for action, n in sorted(summary.counts.items()))
    where = "pending contacts of the journal" if summary.from_journal else settings.csv_path
    agents = ", ".join(settings.agents) if settings.agents else "none given"
    return f"Plan for {where}: {counts or 'nothing'}. Agents (not checked): {agents}."


def _execute(run: Session, settings: CampaignSettings, journal_path: Path) -> ExitCode:
    from gcdial.campaign.runner import CampaignRunner, StopReason
    from gcdial.errors import InputError

    if not settings.agents:
        raise InputError(
            "No agents: the campaign needs someone to dial through.",
            hint="Give --agents a@x.com,b@y.com or --agents-file FILE.",
        )
    view = CampaignView(run)

    async def main() -> RunResult:
        async with run.async_client() as client:
            runner = CampaignRunner(
                settings, client, journal_path=journal_path, observer=view.event
            )
            with _signals(runner, run), view.live(runner):
                return await runner.run()

    result = asyncio.run(main())
    view.finish(result)
    if result.error is not None:
        raise result.error
    if result.reason is StopReason.INTERRUPTED:
        return ExitCode.INTERRUPTED
    if result.status.needs_review:
        return ExitCode.OUTCOME_UNKNOWN
    if result.reason is StopReason.WAITING_FOR_AGENTS:
        return ExitCode.AGENT_NOT_READY
    return ExitCode.OK


@contextlib.contextmanager
def _signals(runner: CampaignRunner, run: Session) -> Iterator[None]:
    """Ctrl-C / SIGTERM: first a graceful stop, then (again) leave at once."""
    loop = asyncio.get_running_loop()
    hits = 0

    def on_signal() -> None:
        nonlocal hits
        hits += 1
        if hits == 1:
            run.output.warn(
                "stopping: no new calls; following the calls in progress to their end "
                "(Ctrl-C again to leave now; resume reconciles them)"
            )
            runner.request_stop()
        else:
            runner.abort()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


_QUIET_KINDS = frozenset({"placed", "dialing"})
_CAPPED_KINDS = frozenset({"deferred", "skipped"})
_CAP = 20


class CampaignView:
    """What the user sees: a live panel on a terminal, plain lines otherwise, JSON with --json."""

    def __init__(self, run: Session) -> None:
        self.run = run
        self._live: Live | None = None
        self._runner: CampaignRunner | None = None
        self._capped: dict[str, int] = {}

    def event(self, event: CampaignEvent) -> None:
        """Show one event."""
        output = self.run.output
        if output.json_mode:
            output.data(event.to_dict())
            return
        if event.kind in _QUIET_KINDS:
            return
        if event.kind in _CAPPED_KINDS:
            seen = self._capped.get(event.kind, 0) + 1
            self._capped[event.kind] = seen
            if seen > _CAP:
                return
        style = {
            "unknown": "yellow",
            "agent_excluded": "yellow",
            "agent_retired": "yellow",
            "waiting_for_agent": "yellow",
            "error": "red",
            "not_sent": "red",
        }.get(event.kind, "")
        text = Text(event.message, style=style)
        if self._live is not None:
            self._live.console.print(text)
        else:
            output.out.print(text)

    @contextlib.contextmanager
    def live(self, runner: CampaignRunner) -> Iterator[None]:
        """A live panel on stderr while the run goes (only on a terminal, not with --json)."""
        self._runner = runner
        output = self.run.output
        if output.json_mode or not output.interactive:
            yield
            return
        from rich.live import Live

        with Live(
            _panel(runner.progress),
            console=output.err,
            refresh_per_second=4,
            transient=True,
            get_renderable=lambda: _panel(runner.progress),
        ) as live:
            self._live = live
            try:
                yield
            finally:
                self._live = None

    def finish(self, result: RunResult) -> None:
        """The final summary: the journal's counts, and what to do next."""
        output = self.run.output
        for kind, seen in self._capped.items():
            if seen > _CAP and not output.json_mode:
                output.say(f"... and {seen - _CAP} more {kind} (see `gcdial campaign report`)")
        data = {
            "event": "summary",
            "reason": result.reason.value,
            "resumed": result.resumed,
            **result.status.as_dict(),
            "calls_placed": result.progress.placed,
            "rate_limited": result.progress.budget.rate_limited if result.progress.budget else 0,
            "excluded_agents": [e.agent for e in result.excluded],
            "waiting_for_agents": result.waiting_for,
        }
        lines = [f"Stopped: {result.reason.value}."]
        if result.validation is not None and result.validation.problem_count:
            lines.append(
                f"{result.validation.problem_count} CSV row(s) refused (listed in the report "
                "with status 'refused')."
            )
        lines += result.status.lines()
        for agent, count in result.waiting_for.items():
            lines.append(f"{count} contact(s) wait for agent {agent}, who is not in the pool.")
        output.result(data, Text("\n".join(lines)))


def _panel(progress: Progress) -> RenderableType:
    """The live display: progress, outcome counts, the rate budget, and every agent's call."""
    from rich.console import Group
    from rich.table import Table

    total = progress.total or 1
    done = progress.settled
    width = 30
    filled = int(width * done / total)
    bar = "█" * filled + "░" * (width - filled)
    head = Text.assemble(
        (f"{progress.name} ", "bold"),
        f"[{bar}] {done}/{progress.total} settled · {progress.phase} · "
        f"{progress.placed} placed this run · {progress.live_calls} live",
    )
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(progress.by_outcome.items())) or "none yet"
    lines: list[RenderableType] = [head, Text(f"outcomes: {outcomes}")]
    budget = progress.budget
    if budget is not None:
        left = "?" if budget.remaining is None else str(budget.remaining)
        limit = "?" if budget.limit is None else str(budget.limit)
        pause = f" · paused {budget.paused_s:.0f}s (429)" if budget.paused_s > 0 else ""
        lines.append(
            Text(f"rate budget: {left}/{limit} left · {budget.rate_limited} rate-limited{pause}")
        )
    if progress.next_due is not None and progress.live_calls == 0:
        lines.append(Text(f"next contact due: {progress.next_due:%Y-%m-%d %H:%M} UTC"))
    table = Table(box=None, show_header=True, pad_edge=False)
    table.add_column("agent")
    table.add_column("state")
    table.add_column("number")
    table.add_column("calls", justify="right")
    agents = list(progress.agents.values())
    for agent in agents[:20]:
        table.add_row(agent.label, agent.activity.value, agent.phone or "", str(agent.calls))
    lines.append(table)
    if len(agents) > 20:
        lines.append(Text(f"... and {len(agents) - 20} more agents"))
    return Group(*lines)
