"""``gcdial campaign run|resume|status|report|review``: dial a contact list through agents.

``run CSV`` starts a campaign, or resumes it when its journal already exists (the options given
then replace the stored ones; the others keep their stored values). ``resume JOURNAL`` resumes
from the journal alone. Ctrl-C or SIGTERM stops gracefully (no new calls, calls in progress
followed to their end); a second Ctrl-C leaves at once (calls in progress are reconciled by the
next resume). The handlers are installed as the command starts, before anything is imported or
opened, so a signal in the first instants stops the campaign before it dials, never mid-way.
``review JOURNAL`` lists what needs a person and records their decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Final

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
    from gcdial.client import AsyncClient
    from gcdial.emulator import EmulatorServer
    from gcdial.local_leases import LocalAgentLeases

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
UntilDeferredOpt = Annotated[
    bool,
    typer.Option(
        "--until-deferred",
        help="Stop (exit 0) once every contact left waits for a later time (a retry delay, the "
        "calling window) instead of waiting for it: for cron.",
        show_default=False,
    ),
]
QueueOpt = Annotated[
    str | None,
    typer.Option(
        "--queue",
        help="Queue id to place the calls for: only such (ACD) calls carry the agent's wrap-up "
        "code, the disposition.",
        show_default=False,
    ),
]
WrapupRulesOpt = Annotated[
    Path | None,
    typer.Option(
        "--wrapup-rules",
        help="TOML file mapping wrap-up codes to done, retry after D, callback, dnc, wrong "
        "number (see docs/campaign.md).",
        show_default=False,
    ),
]
WrapupTimeoutOpt = Annotated[
    str | None,
    typer.Option(
        "--wrapup-timeout",
        help="How long to wait for a call's wrap-up after it ends (0: do not wait). Default 5m.",
        show_default=False,
    ),
]
ResolveTimeoutOpt = Annotated[
    str,
    typer.Option(
        "--resolve-timeout",
        help="How long to work out whether a call whose create answer was lost was placed "
        "(live evidence, conversation details), before leaving it for review.",
    ),
]
ProgressEveryOpt = Annotated[
    str,
    typer.Option(
        "--progress-every",
        help="Away from a terminal (logs, systemd), print a one-line progress this often.",
    ),
]


SIGNAL_ECHO_S: Final = 0.5
"""Signals closer together than this are one request. ``timeout -s INT`` (and a terminal's
Ctrl-C) signal the process and its whole group, so one event arrives twice within microseconds;
a person pressing Ctrl-C again takes far longer."""


class StopRequests:
    """Counts stop requests from SIGINT/SIGTERM, folding the signals that follow a request's
    first one within :data:`SIGNAL_ECHO_S` (on ``monotonic``) into that request."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._last: float | None = None
        self.count = 0

    def signal(self) -> int:
        """Record one signal; the number of distinct requests so far (1: stop, 2: leave now)."""
        now = self._monotonic()
        if self._last is None or now - self._last >= SIGNAL_ECHO_S:
            self._last = now  # measured from a request's first signal: repeats cannot chain
            self.count += 1
        return self.count


class _StopSignals:
    """SIGINT/SIGTERM from the first instant of the command: before the runner exists a signal
    only asks for a stop (the campaign then never starts); once the event loop runs, the loop's
    handlers take over (first request: graceful stop; a second one: leave at once)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.requests = StopRequests(monotonic)
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        """A stop was asked for."""
        return self.requests.count > 0

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread (embedded use)
                self._previous[sig] = signal.signal(sig, self._early)

    def _early(self, signum: int, frame: FrameType | None) -> None:
        if self.requests.signal() > 1:
            raise KeyboardInterrupt  # a second request before the start: leave now

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
        self._previous.clear()


@contextlib.contextmanager
def _stop_signals() -> Iterator[_StopSignals]:
    stops = _StopSignals()
    stops.install()
    try:
        yield stops
    finally:
        stops.restore()


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
    if changes.get("wrapup_timeout_s") is not None:
        changes["wrapup_timeout_s"] = parse_duration(
            changes["wrapup_timeout_s"], option="--wrapup-timeout"
        ).total_seconds()
    if changes.get("wrapup_rules") is not None:
        from gcdial.campaign.wrapup_rules import load_wrapup_rules

        changes["wrapup_rules"] = load_wrapup_rules(changes["wrapup_rules"]).to_json()
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
    queue: QueueOpt = None,
    wrapup_rules: WrapupRulesOpt = None,
    wrapup_timeout: WrapupTimeoutOpt = None,
    dry_run: DryRunOpt = False,
    until_deferred: UntilDeferredOpt = False,
    resolve_timeout: ResolveTimeoutOpt = "3m",
    progress_every: ProgressEveryOpt = "1m",
    json: JsonOpt = False,
    sandbox: SandboxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Dial the contacts of CSV through the agents; resumes if the campaign's journal exists.

    Exit 0 when every contact is settled (or, with --until-deferred, waits for later), 5 when
    some need review (outcome unknown), 7 when contacts wait for an agent who cannot take calls,
    2 for bad input (--strict and bad rows, also with --dry-run), 130 after Ctrl-C or SIGTERM;
    other codes as for `gcdial call`.
    """
    with _stop_signals() as stops, session(ctx, json=json, sandbox=sandbox, verbose=verbose) as run:
        from gcdial.campaign.settings import default_journal_path

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
            queue_id=queue,
            wrapup_rules=wrapup_rules,
            wrapup_timeout_s=wrapup_timeout,
        )
        if dry_run:
            _dry_run(run, settings, journal_path)
            return
        options = _RunOptions(
            until_deferred,
            _interval(progress_every, "--progress-every"),
            stops,
            _interval(resolve_timeout, "--resolve-timeout"),
        )
        raise typer.Exit(int(_execute(run, settings, journal_path, options)))


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
    queue: QueueOpt = None,
    wrapup_rules: WrapupRulesOpt = None,
    wrapup_timeout: WrapupTimeoutOpt = None,
    dry_run: DryRunOpt = False,
    until_deferred: UntilDeferredOpt = False,
    resolve_timeout: ResolveTimeoutOpt = "3m",
    progress_every: ProgressEveryOpt = "1m",
    json: JsonOpt = False,
    sandbox: SandboxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Resume the campaign of JOURNAL with its stored settings (options given replace them).

    Calls left in flight are reconciled first: followed to their end when Genesys accepted them,
    set aside for review (never re-dialed) when the answer was lost. Limits given here
    (--max-attempts...) bind every contact from now on, retries already scheduled included.
    """
    with _stop_signals() as stops, session(ctx, json=json, sandbox=sandbox, verbose=verbose) as run:
        from gcdial.campaign.journal import JournalError

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
            queue_id=queue,
            wrapup_rules=wrapup_rules,
            wrapup_timeout_s=wrapup_timeout,
        )
        if dry_run:
            _dry_run(run, settings, journal)
            return
        options = _RunOptions(
            until_deferred,
            _interval(progress_every, "--progress-every"),
            stops,
            _interval(resolve_timeout, "--resolve-timeout"),
        )
        raise typer.Exit(int(_execute(run, settings, journal, options)))


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
            opened.verify()
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
        opened.verify()
        if output is None:
            write_report(opened, sys.stdout, fmt=fmt.value)
            sys.stdout.flush()
            return
        with _writable(output) as out:
            count = write_report(opened, out, fmt=fmt.value)
        run.output.ok(f"wrote {count} row(s) to {output}")


class Verdict(StrEnum):
    """A person's finding about a call whose outcome was unknown."""

    PLACED = "placed"
    NOT_PLACED = "not-placed"


@app.command("review")
def review_cmd(
    ctx: typer.Context,
    journal: JournalArg,
    verdict: Annotated[
        Verdict | None,
        typer.Option(
            "--verdict",
            help="Record what you found for the --line contacts: placed (the customer was "
            "called: done) or not-placed (dial again; the attempt is not counted).",
            case_sensitive=False,
            show_default=False,
        ),
    ] = None,
    lines: Annotated[
        list[int] | None,
        typer.Option("--line", help="CSV line of a contact to record the verdict for.", min=1),
    ] = None,
    note: Annotated[
        str, typer.Option("--note", help="Why (kept in the journal with the verdict).")
    ] = "verdict recorded by a person (gcdial campaign review)",
    reassign: Annotated[
        str | None,
        typer.Option(
            "--reassign",
            help="Move the pending contacts pinned to this agent (email or id)...",
            show_default=False,
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", help="...to this agent, or `any` for whoever is free.", show_default=False
        ),
    ] = None,
    json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """What needs a person: calls of unknown outcome (with their evidence) and contacts pinned to
    an agent. Records a verdict (--verdict placed|not-placed --line N) or moves pinned contacts
    (--reassign AGENT --to OTHER|any); resume the campaign afterwards."""
    from gcdial.campaign import review
    from gcdial.campaign.journal import Journal
    from gcdial.errors import InputError

    with session(ctx, json=json, verbose=verbose) as run:
        if (verdict is None) != (not lines):
            raise InputError(
                "--verdict and --line go together.",
                hint="Example: gcdial campaign review c.db --verdict not-placed --line 7 --line 9",
            )
        if (reassign is None) != (to is None):
            raise InputError(
                "--reassign and --to go together.",
                hint="Example: gcdial campaign review c.db --reassign gone@x.com --to any",
            )
        if verdict is None and reassign is None:
            with Journal.open(journal, read_only=True) as opened:
                opened.verify()
                _show_review(run, opened)
            return
        with Journal.open(journal) as opened:
            opened.verify()
            for line in lines or []:
                contact = opened.contacts.at_line(line)
                if contact is None:
                    raise InputError(
                        f"Line {line} of the list is not a contact of this campaign.",
                        hint="Use the line numbers that `gcdial campaign review` lists.",
                    )
                opened.contacts.record_verdict(
                    contact.id, placed=verdict is Verdict.PLACED, note=note
                )
                run.output.ok(f"line {line} ({contact.phone}): recorded {verdict}")
            if reassign is not None and to is not None:
                moved = review.reassign(opened, reassign, to)
                run.output.ok(f"{moved} pending contact(s) of {reassign} now go to {to}")
        run.output.say(f"Resume to continue: gcdial campaign resume {journal}", style="dim")


def _show_review(run: Session, journal: Any) -> None:
    import json as json_module

    from gcdial.campaign import review
    from gcdial.config import DEFAULT_ANALYTICS_SETTLE_S, DEFAULT_ATTEMPT_ATTRIBUTE
    from gcdial.errors import GcdialError

    settle_s, attribute = DEFAULT_ANALYTICS_SETTLE_S, DEFAULT_ATTEMPT_ATTRIBUTE
    with contextlib.suppress(GcdialError):  # review needs no credentials: defaults then
        settings = run.settings()
        settle_s, attribute = settings.analytics_settle_s, settings.attempt_attribute
    items = review.evidence_lines(
        review.needs_review(journal), settle_s=settle_s, attempt_attribute=attribute
    )
    pinned = review.pinned_agents(journal)
    unwrapped = review.missing_wrapups(journal)
    if run.output.json_mode:
        for item in [*items, *unwrapped]:
            run.output.data(item)
        missing = json_module.loads(journal.get_meta("waiting_for_agents") or "{}")
        run.output.data(
            {
                "event": "summary",
                "needs_review": len(items),
                "pinned": {p.agent: p.contacts for p in pinned},
                "missing": missing,
                "wrapups_missing": len(unwrapped),
            }
        )
        return
    out = []
    for item in items:
        out.append(f"line {item['line']} {item['phone']}: outcome unknown: {item['detail']}")
        for a in item["attempts"]:
            conv = f", conversation {a['conversation_id']}" if a["conversation_id"] else ""
            out.append(
                f"  attempt {a['attempt']} at {a['at']} by {a['agent']}: {a['state']}{conv}"
                + (f" ({a['detail']})" if a["detail"] else "")
            )
        out.append(f"  what would settle it: {item['would_settle']['text']}")
    if items:
        out.append(
            f"{len(items)} contact(s) need a verdict. Check each call in Genesys Cloud "
            "(Performance > Interactions, by number and time), then record it: "
            "--verdict placed|not-placed --line N."
        )
    for w in unwrapped:
        out.append(
            f"line {w['line']} {w['phone']}: no wrap-up arrived for call {w['conversation_id']} "
            f"({w['outcome']}, {w['agent']}, {w['at']}); the retry policy decided"
        )
    if unwrapped:
        out.append(
            f"{len(unwrapped)} call(s) without a wrap-up: check their disposition in Genesys Cloud."
        )
    for p in pinned:
        gone = " (not in the last run's pool)" if p.gone else ""
        out.append(
            f"{p.contacts} pending contact(s) pinned to {p.agent}{gone}: "
            f"--reassign {p.agent} --to X|any"
        )
    run.output.result({}, Text("\n".join(out) or "Nothing needs review."))


@contextlib.contextmanager
def _writable(path: Path) -> Iterator[Any]:
    from gcdial.errors import InputError
    from gcdial.private_files import open_private

    try:
        handle = open_private(path, "w", newline="")  # customers' numbers: 0600
    except OSError as exc:
        raise InputError(
            f"Cannot write the report to {path}: {exc.strerror}.",
            hint="Give a path in an existing, writable folder.",
        ) from None
    with handle:
        yield handle


@dataclass(frozen=True)
class _RunOptions:
    """How this command runs the campaign (not stored in the journal)."""

    until_deferred: bool
    progress_every_s: float
    stops: _StopSignals
    resolve_timeout_s: float


def _interval(text: str, option: str) -> float:
    from gcdial.campaign.settings import parse_duration
    from gcdial.errors import InputError

    seconds = parse_duration(text, option=option).total_seconds()
    if seconds < 1:
        raise InputError(f"{option} {text!r} is too short.", hint="Give at least 1s, e.g. 30s.")
    return seconds


def _dry_run(run: Session, settings: CampaignSettings, journal_path: Path) -> None:
    from gcdial.campaign.plan import PlanSummary, plan
    from gcdial.errors import InputError

    summary = PlanSummary()
    lines = plan(
        settings,
        now=datetime.now(UTC),
        journal_path=journal_path,
        agents=settings.agents or None,
        summary=summary,
    )
    for line in lines:
        _row(run, line.to_dict(), str(line))
    org_codes = _org_wrapup_codes(run) if settings.queue_id or settings.wrapup_rules else None
    for text in settings.describe_wrapups(org_codes):
        _row(run, {"event": "wrapup_rules", "line": text}, text)
    _row(run, summary.as_dict(), _plan_summary(summary, settings))
    if not run.output.json_mode:
        sent = "nothing was dialed" if org_codes is not None else "nothing was sent"
        run.output.say(f"dry run: {sent} and nothing was written.", style="dim")
    refused = summary.counts.get("refused", 0)
    if settings.strict and refused and not summary.from_journal:
        raise InputError(
            f"{refused} bad row(s) in {settings.csv_path} and --strict is on: a real run would "
            "refuse to start.",
            hint="Fix the rows listed above, or run without --strict to skip them (they are "
            "recorded in the report).",
        )


def _org_wrapup_codes(run: Session) -> dict[str, str] | None:
    """The org's wrap-up codes (id -> name) for the preview: one read-only GET, or None when it
    cannot be made (no credentials, no permission): the preview then says less, and goes on."""
    from gcdial.errors import GcdialError
    from gcdial.monitor.wrapup import list_wrapup_codes

    async def codes() -> dict[str, str]:
        async with run.async_client() as client:
            return await list_wrapup_codes(client.transport)

    try:
        return asyncio.run(codes())
    except GcdialError as exc:
        run.output.say(f"could not list the org's wrap-up codes: {exc.message}", style="dim")
        return None


def _row(run: Session, data: dict[str, Any], text: str) -> None:
    """One line of data: JSON with --json, else the text, never wrapped (pipes and files)."""
    if run.output.json_mode:
        run.output.data(data)
    else:
        run.output.out.print(Text(text), soft_wrap=True)


def _plan_summary(summary: Any, settings: CampaignSettings) -> str:
    counts = ", ".join(f"{action} {n}" for action, n in sorted(summary.counts.items()))
    where = "pending contacts of the journal" if summary.from_journal else settings.csv_path
    agents = ", ".join(settings.agents) if settings.agents else "none given"
    return f"Plan for {where}: {counts or 'nothing'}. Agents (not checked): {agents}."


def _show_bad_rows(run: Session, problems: Any, total: int) -> None:
    """Every bad row on a line of its own (stderr), ``file:line: column: reason. fix``."""
    output = run.output
    shown = 0
    for problem in problems:
        shown += 1
        if output.json_mode:
            output.data(_bad_row(problem))
        else:
            output.err.print(Text(str(problem)), soft_wrap=True)
    if total > shown and not output.json_mode:
        output.say(f"... and {total - shown} more bad row(s) (see `gcdial campaign report`)")


def _bad_row(problem: Any) -> dict[str, Any]:
    return {
        "event": "bad_row",
        "file": problem.file,
        "line": problem.line,
        "column": problem.column,
        "problem": problem.kind,
        "reason": problem.reason,
        "fix": problem.fix,
        "message": str(problem),
    }


class _SandboxClock:
    """The sandbox emulator's simulated time, so that retry delays and calling windows pass at
    its speed (``GCDIAL_SANDBOX_SPEED``) instead of in real seconds."""

    def __init__(self, emulator: EmulatorServer) -> None:
        self._clock = emulator.state.clock

    def __call__(self) -> datetime:
        return datetime.fromisoformat(self._clock.iso())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) / self._clock.speed)


def _sandbox_note(run: Session, journal_path: Path) -> None:
    """Say plainly what resuming in the sandbox means for calls left in flight."""
    from gcdial.campaign.journal import Journal

    if not Journal.exists(journal_path):
        return
    with Journal.open(journal_path, read_only=True) as journal:
        left = len(journal.attempts.in_flight())
    if left:
        run.output.warn(
            f"--sandbox: {left} call(s) were in flight when the last run stopped. Each sandbox "
            "run starts a new, empty emulator (the previous one ended with its process), so "
            "those calls cannot be followed: they become 'unknown' for review and are not "
            "re-dialed. Against Genesys Cloud they would be followed to their end."
        )


def _execute(
    run: Session, settings: CampaignSettings, journal_path: Path, options: _RunOptions
) -> ExitCode:
    from gcdial.campaign.csvinput import CsvValidationError
    from gcdial.campaign.runner import CampaignRunner, StopReason
    from gcdial.errors import InputError
    from gcdial.gate import ExclusiveGate, ReadinessGate
    from gcdial.local_leases import holding

    if not settings.agents:
        raise InputError(
            "No agents: the campaign needs someone to dial through.",
            hint="Give --agents a@x.com,b@y.com or --agents-file FILE.",
        )
    if options.stops.requested:
        return _stopped_before_start(run)
    view = CampaignView(run, progress_every_s=options.progress_every_s)

    async def main() -> RunResult | None:
        async with run.async_client() as client:
            timing: dict[str, Any] = {}
            if run.emulator is not None:
                _sandbox_note(run, journal_path)
                sandbox = _SandboxClock(run.emulator)
                timing = {"clock": sandbox, "sleep": sandbox.sleep}
            # One live call per agent across every run of this user on the machine.
            leases = _agent_leases(client, journal_path)
            runner = CampaignRunner(
                settings,
                client,
                journal_path=journal_path,
                observer=view.event,
                until_deferred=options.until_deferred,
                resolve_timeout_s=options.resolve_timeout_s,
                gate=ExclusiveGate(
                    ReadinessGate(client.agents.check),
                    leases,
                    lambda attempt_id: f"{journal_path.name}#{attempt_id}",
                ),
                **timing,
            )
            async with holding(leases):
                with _signals(runner, run, options.stops.requests, journal_path):
                    if options.stops.requested:
                        return None
                    with view.live(runner):
                        return await runner.run()

    try:
        result = asyncio.run(main())
    except CsvValidationError as exc:
        _show_bad_rows(run, exc.report.problems, exc.report.problem_count)
        raise InputError(
            f"{exc.report.problem_count} bad row(s) in {exc.report.file} and --strict is on: "
            "nothing was dialed.",
            hint="Fix the rows listed above, or run without --strict to skip them (they are "
            "recorded in the report).",
        ) from None
    if result is None:
        return _stopped_before_start(run)
    view.finish(result, journal_path)
    if result.error is not None:
        raise result.error
    if result.reason is StopReason.INTERRUPTED:
        return ExitCode.INTERRUPTED
    if result.status.needs_review:
        return ExitCode.OUTCOME_UNKNOWN
    if result.reason is StopReason.WAITING_FOR_AGENTS:
        return ExitCode.AGENT_NOT_READY
    return ExitCode.OK


def _agent_leases(client: AsyncClient, journal_path: Path) -> LocalAgentLeases:
    """The rows of agents with a live call, shared by this user's runs on the machine."""
    import sqlite3

    from gcdial.errors import ConfigError
    from gcdial.local_leases import LocalAgentLeases, default_path

    path = default_path()
    try:
        return LocalAgentLeases(
            path,
            scope=client.settings.endpoints().api_base_url,
            run=str(journal_path.resolve()),
        )
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(
            f"Cannot open {path}, where runs record which agents have a live call: {exc}",
            hint="Check that you may write there, or set GCDIAL_AGENT_LOCKS to a writable file.",
        ) from None


def _stopped_before_start(run: Session) -> ExitCode:
    run.output.warn("stopped (signal) before the campaign started: nothing was dialed.")
    if run.output.json_mode:
        run.output.data({"event": "summary", "reason": "interrupted", "calls_placed": 0})
    return ExitCode.INTERRUPTED


@contextlib.contextmanager
def _signals(
    runner: CampaignRunner, run: Session, requests: StopRequests, journal_path: Path
) -> Iterator[None]:
    """Ctrl-C / SIGTERM: first a graceful stop, then (a second request) leave at once."""
    loop = asyncio.get_running_loop()
    handled = requests.count

    def on_signal() -> None:
        nonlocal handled
        count = requests.signal()
        if count == handled:
            return  # the same event again (the process and its group were both signalled)
        handled = count
        if count == 1:
            run.output.warn(
                "stopping: no new calls; following the calls in progress to their end "
                "(Ctrl-C again to leave now; resume reconciles them)"
            )
            runner.request_stop()
        else:
            live = runner.progress.live_calls
            run.output.warn(
                f"leaving now (second stop request): {live} call(s) in progress are no longer "
                f"followed; `gcdial campaign resume {journal_path}` reconciles them"
            )
            runner.abort()

    installed: list[signal.Signals] = []
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

    def __init__(self, run: Session, *, progress_every_s: float = 60.0) -> None:
        self.run = run
        self._live: Live | None = None
        self._runner: CampaignRunner | None = None
        self._capped: dict[str, int] = {}
        self._progress_every_s = progress_every_s

    def event(self, event: CampaignEvent) -> None:
        """Show one event."""
        output = self.run.output
        if output.json_mode:
            output.data(event.to_dict())
            return
        if event.kind in _QUIET_KINDS:
            return
        if event.kind == "bad_row":
            # Diagnostics, one row per line, never capped here (the runner passes the first
            # thousand; the report has them all).
            target = self._live.console if self._live is not None else output.err
            target.print(Text(event.message), soft_wrap=True)
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
            ticker = asyncio.get_running_loop().create_task(self._tick(runner.progress))
            try:
                yield
            finally:
                ticker.cancel()
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

    async def _tick(self, progress: Progress) -> None:
        """Away from a terminal: one line of progress every so often, for logs and systemd.

        On the run's one clock (the sandbox's, in the sandbox): --progress-every and the time
        running count the same seconds as the journal's times."""
        clock, sleep = self.run.core_clock()
        started = clock()
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await sleep(self._progress_every_s)
                output = self.run.output
                if output.json_mode:
                    output.data({"event": "progress", **progress.as_dict()})
                else:
                    line = progress_line(progress, running_s=clock() - started)
                    output.err.print(Text(line), soft_wrap=True)

    def finish(self, result: RunResult, journal_path: Path | None = None) -> None:
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
            "rate_windows": [
                {"window": window, "sent": sent, "held_s": round(held, 3)}
                for window, sent, held in (
                    result.progress.budget.windows if result.progress.budget else ()
                )
            ],
            "excluded_agents": [e.agent for e in result.excluded],
            "waiting_for_agents": result.waiting_for,
        }
        lines = [f"Stopped: {result.reason.value}."]
        if result.validation is not None and result.validation.problem_count:
            lines.append(
                f"{result.validation.problem_count} CSV row(s) refused (listed in the report "
                "with status 'refused')."
            )
        lines += [
            line
            for line in result.status.lines()
            if not line.startswith(("Not finished", "Running now"))
        ]
        journal = str(journal_path) if journal_path is not None else "JOURNAL"
        for agent, count in result.waiting_for.items():
            lines.append(
                f"{count} contact(s) wait for agent {agent}, who is not in this run's pool. "
                f"Add {agent} to --agents when they can take calls, or give the contacts to "
                f"someone else: gcdial campaign review {journal} --reassign {agent} --to AGENT "
                "(or --to any)."
            )
        if result.reason.value == "deferred" and result.status.next_due is not None:
            when = f"{result.status.next_due:%Y-%m-%d %H:%M}"
            lines.append(
                f"Every contact left waits for later (next at {when} UTC): run again then."
            )
        output.result(data, Text("\n".join(lines)))


def progress_line(progress: Progress, *, running_s: float | None = None) -> str:
    """One line for logs: settled of total, outcomes, live calls, what is next, and how long it
    has been running (``running_s`` on the run's clock; default: real time since the start)."""
    if running_s is None:
        running_s = time.monotonic() - progress.started
    elapsed = timedelta(seconds=int(running_s))
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(progress.by_outcome.items()))
    waiting = progress.by_status.get("pending", 0)
    text = (
        f"progress: {progress.settled}/{progress.total} settled, {waiting} pending, "
        f"{progress.live_calls} live, {progress.placed} placed this run"
    )
    if outcomes:
        text += f" ({outcomes})"
    if progress.next_due is not None and progress.live_calls == 0:
        text += f", next due {progress.next_due:%Y-%m-%d %H:%M} UTC"
    return f"{text}; {progress.phase}; running {elapsed}"


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
