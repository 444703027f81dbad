"""What the campaign API shows beyond its status: an upload's preview, a campaign's detail.

The preview puts the uploaded list through the campaign's own dry run (``campaign.plan.plan``:
the same CSV validation, duplicate detection and calling rules as the runner), in a temporary
directory removed at once: nothing is stored, nothing is dialed. Its reasons never quote a row's
values (numbers, names): a preview may be shown on a shared screen.

The detail is read from the journal (read-only, beside a running campaign) and, when this process
runs the campaign, from the runner's live snapshot: agents' states, the rate budget, calls per
minute over the last hour and the contacts waiting for a later time.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from gcdial.campaign.csvinput import CsvFileError
from gcdial.campaign.journal import ContactRecord, Journal, JournalError
from gcdial.campaign.plan import PlanLine, PlanSummary, plan
from gcdial.campaign.progress import AgentActivity, Progress
from gcdial.campaign.runner import AGENT_STATES_META
from gcdial.campaign.settings import CampaignSettings
from gcdial.errors import GcdialError
from gcdial.http import Budget
from gcdial.monitor.wrapup import list_wrapup_codes
from gcdial.serve.problems import ApiProblem

if TYPE_CHECKING:
    from gcdial.client import AsyncClient

__all__ = [
    "CHART_MINUTES",
    "MAX_DEFERRED_SHOWN",
    "MAX_REFUSED_SHOWN",
    "RunView",
    "campaign_detail",
    "preview_upload",
    "run_view",
    "upload_problem",
]

MAX_REFUSED_SHOWN: Final = 200
MAX_DEFERRED_SHOWN: Final = 100
CHART_MINUTES: Final = 60

# Rows the runner never dials (``skip``), by the rules' outcome code: value-free words and a fix.
_SKIP_WORDS: Final = {
    "do_not_call": ("on the do-not-call list", "Remove the row: this number must not be called."),
    "unknown_time_zone": (
        "no time zone is known for this number, so the calling window cannot be checked",
        "Give its zone in a timezone column (e.g. America/New_York).",
    ),
    "no_calling_hours": (
        "no time inside the calling window is open in all of the number's time zones",
        "Give its zone in a timezone column, or widen the calling window.",
    ),
}


async def wrapup_preview(client: AsyncClient, settings: dict[str, Any]) -> list[str]:
    """What the preview says about wrap-ups: the queue (or its absence), the rules, and the
    org's codes they leave unmapped (one read-only request, only when there are rules)."""
    queue, rules = settings.get("queue_id"), settings.get("wrapup_rules")
    campaign = CampaignSettings(csv_path="-", queue_id=queue, wrapup_rules=rules)
    org_codes: dict[str, str] | None = None
    if rules is not None:
        try:
            org_codes = await list_wrapup_codes(client.transport)
        except GcdialError:
            org_codes = None
    return list(campaign.describe_wrapups(org_codes))


def preview_upload(
    text: str, settings: dict[str, Any], *, now: datetime, limit: int = MAX_REFUSED_SHOWN
) -> dict[str, Any]:
    """The rows of ``text`` the campaign would refuse and why (first ``limit``), and the counts.

    ``settings`` are the campaign's (as ``create`` stores them). Bad settings are a 422
    ``invalid_settings``, a file that cannot be read as a contact list a 422 ``invalid_csv``.
    """
    with tempfile.TemporaryDirectory(prefix="gcdial-preview-") as folder:
        path = Path(folder) / "contacts.csv"
        path.write_text(text, encoding="utf-8")
        try:
            campaign = CampaignSettings(csv_path=str(path), **settings)
        except GcdialError as exc:
            raise ApiProblem(422, "invalid_settings", exc.message, hint=exc.hint) from None
        summary = PlanSummary()
        refused: list[dict[str, Any]] = []
        by_kind: Counter[str] = Counter()
        try:
            for line in plan(campaign, now=now, agents=campaign.agents, summary=summary):
                item = _refused_item(line, campaign)
                if item is None:
                    continue
                by_kind[item["kind"]] += 1
                if len(refused) < limit:
                    refused.append(item)
        except CsvFileError as exc:
            raise upload_problem(exc, str(path)) from None
    counts = summary.counts
    hidden = counts["refused"] - sum(by_kind[k] for k in ("invalid", "duplicate"))
    if hidden > 0:  # beyond the reader's kept problems: counted, not described
        by_kind["invalid"] += hidden
    refused_total = counts["refused"] + counts["skip"]
    accepted = counts["dial"] + counts["defer"] + counts["wait_agent"] + counts["ended"]
    return {
        "rows": {
            "total": accepted + refused_total,
            "accepted": accepted,
            "refused": refused_total,
            "deferred": counts["defer"],
            "waitingForAgent": counts["wait_agent"],
            "afterEnd": counts["ended"],
            "skipped": counts["skip"],
        },
        "refusedByKind": dict(sorted(by_kind.items())),
        "refused": refused,
        "moreRefused": refused_total - len(refused),
        "canUpload": accepted > 0,
    }


def upload_problem(exc: CsvFileError, path: str) -> ApiProblem:
    """A 422 for a list that cannot be read at all, saying where (line) without the temp path."""
    where = f"{exc.file}:{exc.line}" if exc.line is not None else exc.file
    reason = exc.message[len(where) + 2 :] if exc.message.startswith(where) else exc.message
    reason = reason.replace(path, "the upload")
    at = f"line {exc.line}: " if exc.line is not None else ""
    return ApiProblem(
        422,
        "invalid_csv",
        f"The upload is not a usable contact list: {at}{reason}",
        hint=exc.hint or "Upload a UTF-8 CSV with a header row and a phone column.",
        path="form:file",
    )


def _refused_item(line: PlanLine, settings: CampaignSettings) -> dict[str, Any] | None:
    problem = line.problem
    if line.action == "refused" and problem is not None:
        return {
            "line": problem.line,
            "column": problem.column,
            "kind": problem.kind,
            "reason": problem.value_free_reason,
            "fix": problem.fix,
        }
    if line.action != "skip":
        return None
    kind = line.outcome or "skipped"
    reason, fix = _SKIP_WORDS.get(kind, ("refused by the calling rules", "Check the row."))
    if kind == "no_calling_hours":
        reason = f"{reason} ({settings.window})"
    return {
        "line": line.line,
        "column": settings.phone_column or "phone",
        "kind": kind,
        "reason": reason,
        "fix": fix,
    }


@dataclass(frozen=True)
class RunView:
    """A campaign this process runs, copied from the runner's snapshot on the event loop (the
    runner changes it there; the journal is read in a thread)."""

    agents: list[dict[str, Any]]
    live_calls: int
    max_concurrent: int | None


def run_view(progress: Progress, max_concurrent: int | None, monotonic_now: float) -> RunView:
    """Copy what the detail needs from a running campaign's :class:`Progress`."""
    return RunView(_live_agents(progress, monotonic_now), progress.live_calls, max_concurrent)


def campaign_detail(
    read: Callable[[], Journal | None],
    settings: dict[str, Any],
    *,
    now: datetime,
    run: RunView | None,
    budget: Budget | None,
    monotonic_now: float,
    deferred_limit: int = MAX_DEFERRED_SHOWN,
    planned_total: int | None = None,
) -> dict[str, Any]:
    """Progress, agents, rate budget, calls per minute and deferred contacts of one campaign.

    Reads the journal read-only from ``read`` (call it in a thread); a campaign that never ran
    has no journal (``read`` gives None):
    its agents are as listed, its total the ``planned_total`` its upload counted, everything
    else empty.
    """
    listed = [str(a) for a in settings.get("agents", [])]
    journal: Journal | None = None
    with contextlib.suppress(JournalError):
        journal = read()
    try:
        if journal is None:
            by_status: dict[str, int] = {}
            by_outcome: dict[str, int] = {}
            by_disposition: dict[str, int] = {}
            wrapups_missing = 0
            in_flight = 0
            times: list[datetime] = []
            deferred_total, deferred = 0, list[ContactRecord]()
            calls_by_agent: dict[str, int] = {}
            stored: dict[str, Any] = {}
        else:
            by_status = journal.contacts.count_by("status")
            by_outcome = journal.contacts.settled_outcomes()
            by_disposition, wrapups_missing = journal.attempts.wrapup_counts()
            attempts = journal.attempts.count_by("state")
            in_flight = attempts.get("intent", 0) + attempts.get("accepted", 0)
            since = now - timedelta(minutes=CHART_MINUTES)
            times = journal.attempts.times(since)
            deferred_total, deferred = journal.pending.deferred(now, limit=deferred_limit)
            calls_by_agent = journal.attempts.count_by("agent")
            stored = journal.meta_json(AGENT_STATES_META, dict) or {}
    finally:
        if journal is not None:
            journal.close()
    total = sum(by_status.values()) if journal is not None else (planned_total or 0)
    settled = sum(by_status.get(s, 0) for s in ("done", "skipped", "unknown"))
    if run is not None and run.agents:
        agents = run.agents
        in_flight = max(in_flight, run.live_calls)
        pool = sum(1 for a in agents if a["state"] not in ("retired", "excluded"))
        max_concurrent: int | None = min(run.max_concurrent or pool, pool) if pool else 0
    else:
        agents = _stored_agents(listed, stored, calls_by_agent)
        if run is not None:  # it runs here, still checking its agents
            agents = [{**a, "state": "checking", "why": None} for a in agents]
        max_concurrent = settings.get("concurrency") or len(listed)
    return {
        "now": now.isoformat(timespec="seconds"),
        "running": run is not None,
        "progress": {
            "total": total,
            "settled": settled,
            "byStatus": dict(sorted(by_status.items())),
            "byOutcome": dict(sorted(by_outcome.items())),
            "byDisposition": dict(sorted(by_disposition.items())),
            "wrapupsMissing": wrapups_missing,
        },
        "agents": agents,
        "rate": _rate(in_flight, max_concurrent, times, now, budget, monotonic_now),
        "perMinute": _per_minute(times, now),
        "deferred": {
            "total": deferred_total,
            "items": [
                {
                    "line": c.line,
                    "externalId": c.external_id,
                    "reason": c.detail or "waiting for its time",
                    "dueAt": c.next_at.isoformat(timespec="seconds") if c.next_at else None,
                    "attempts": c.attempts,
                }
                for c in deferred
            ],
        },
    }


def _live_agents(progress: Progress, monotonic_now: float) -> list[dict[str, Any]]:
    agents: list[dict[str, Any]] = [
        {"agent": agent, "state": "excluded", "step": None, "forSeconds": None, "calls": 0,
         "why": why}
        for agent, why in progress.excluded.items()
    ]  # fmt: skip
    for view in progress.agents.values():
        if view.activity is AgentActivity.RETIRED:
            state, step = "retired", None
        elif view.activity is AgentActivity.IDLE:
            state, step = "idle", None
        else:
            state, step = "on call", view.activity.value
        agents.append(
            {
                "agent": view.label,
                "state": state,
                "step": step,
                "forSeconds": round(max(0.0, monotonic_now - view.since), 1),
                "calls": view.calls,
                "why": view.note if state == "retired" else None,
            }
        )
    return sorted(agents, key=lambda a: str(a["agent"]).lower())


def _stored_agents(
    listed: list[str], stored: dict[str, Any], calls_by_agent: dict[str, int]
) -> list[dict[str, Any]]:
    """Agents of a campaign not running here: as its last run left them, else as listed."""
    names = list(dict.fromkeys([*listed, *stored]))
    known = {k.lower(): v for k, v in stored.items() if isinstance(v, dict)}
    calls = {k.lower(): v for k, v in calls_by_agent.items()}
    agents = []
    for name in names:
        last = known.get(name.lower(), {})
        state = last.get("state") if last.get("state") in ("retired", "excluded") else "idle"
        agents.append(
            {
                "agent": name,
                "state": state,
                "step": None,
                "forSeconds": None,
                "calls": calls.get(name.lower(), 0),
                "why": last.get("why") if state != "idle" else None,
            }
        )
    return sorted(agents, key=lambda a: str(a["agent"]).lower())


def _rate(
    in_flight: int,
    max_concurrent: int | None,
    times: list[datetime],
    now: datetime,
    budget: Budget | None,
    monotonic_now: float,
) -> dict[str, Any]:
    last_minute = sum(1 for t in times if t > now - timedelta(minutes=1))
    genesys: dict[str, Any] | None = None
    if budget is not None:
        paused = budget.paused_until
        genesys = {
            "remaining": budget.remaining,
            "limit": budget.limit,
            "rateLimited": budget.rate_limited_count,
            "pausedSeconds": round(max(0.0, paused - monotonic_now), 1) if paused else 0.0,
        }
    return {
        "inFlight": in_flight,
        "maxConcurrent": max_concurrent,
        "callsLastMinute": last_minute,
        "callsPerMinuteLimit": None,  # the runner paces by agents and concurrency only
        "genesys": genesys,
    }


def _per_minute(times: list[datetime], now: datetime) -> dict[str, Any]:
    """Attempts begun in each of the last ``CHART_MINUTES`` minutes, oldest first."""
    end = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=CHART_MINUTES)
    counts = [0] * CHART_MINUTES
    for moment in times:
        index = int((moment - start).total_seconds() // 60)
        if 0 <= index < CHART_MINUTES:
            counts[index] += 1
    return {"start": start.isoformat(timespec="seconds"), "minutes": CHART_MINUTES,
            "counts": counts}  # fmt: skip
