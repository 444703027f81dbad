"""The dry run: what a campaign would do with each contact right now, sending nothing.

No request of any kind leaves the machine (not even for a token) and nothing is written: the list
is read as a stream (or, when the campaign already has a journal, its pending contacts are read
without taking the lock) and every contact is put through the rules at ``now``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from gcdial.campaign.csvinput import Contact, ContactReader, RowProblem
from gcdial.campaign.journal import ContactStatus, Journal, redecided_due
from gcdial.campaign.rules import Action, Rules
from gcdial.campaign.settings import CampaignSettings

__all__ = ["PlanLine", "PlanSummary", "plan"]


@dataclass(frozen=True, slots=True)
class PlanLine:
    """One contact's fate: ``dial``, ``defer`` (until ``at``), ``skip``, ``refused`` (bad row),
    ``wait_agent`` (its agent is not in the list) or ``ended`` (after the end time)."""

    line: int
    phone: str | None
    action: str
    reason: str
    at: datetime | None = None
    agent: str | None = None
    outcome: str | None = None
    problem: RowProblem | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "event": "plan",
            "line": self.line,
            "phone": self.phone,
            "action": self.action,
            "reason": self.reason,
            "at": self.at.isoformat() if self.at else None,
            "agent": self.agent,
            "outcome": self.outcome,
            "fix": self.problem.fix if self.problem is not None else None,
        }

    def __str__(self) -> str:
        if self.problem is not None:
            return str(self.problem)  # file:line: column: reason. fix, as in every mode
        who = f" {self.phone}" if self.phone else ""
        agent = f" [{self.agent}]" if self.agent else ""
        when = f" until {self.at:%Y-%m-%d %H:%M} UTC" if self.at and self.action == "defer" else ""
        return f"line {self.line}{who}: {self.action}{when}{agent}: {self.reason}"


@dataclass
class PlanSummary:
    """Counts by action, filled as the plan is iterated."""

    counts: Counter[str] = field(default_factory=Counter)
    from_journal: bool = False
    other_statuses: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "event": "summary",
            "dry_run": True,
            "sent": False,
            "by_action": dict(sorted(self.counts.items())),
            "from_journal": self.from_journal,
            "already": dict(sorted(self.other_statuses.items())),
        }


def _verdict(contact: Contact, rules: Rules, now: datetime, agents: set[str] | None) -> PlanLine:
    decision = rules.check(contact, now)
    action = {
        Action.DIAL: "dial",
        Action.DEFER: "defer",
        Action.SKIP: "skip",
        Action.ENDED: "ended",
    }[decision.action]
    if (
        decision.action in (Action.DIAL, Action.DEFER)
        and contact.agent
        and agents is not None
        and contact.agent.strip().lower() not in agents
    ):
        return PlanLine(
            contact.line,
            contact.phone_e164,
            "wait_agent",
            f"its agent {contact.agent} is not in the agent list",
            agent=contact.agent,
        )
    return PlanLine(
        contact.line,
        contact.phone_e164,
        action,
        decision.reason,
        at=decision.at if decision.action is Action.DEFER else None,
        agent=contact.agent,
        outcome=decision.outcome,
    )


def _refused(problem: RowProblem) -> PlanLine:
    where = f"column {problem.column!r}: " if problem.column else ""
    return PlanLine(
        problem.line,
        None,
        "refused",
        f"{where}{problem.reason}",
        outcome=problem.kind,
        problem=problem,
    )


def plan(
    settings: CampaignSettings,
    *,
    now: datetime,
    journal_path: str | Path | None = None,
    agents: Sequence[str] | None = None,
    summary: PlanSummary | None = None,
) -> Iterator[PlanLine]:
    """Yield one :class:`PlanLine` per contact (and per refused row), in list order.

    ``agents`` are compared as given (not looked up: that would need the network). With an
    existing journal at ``journal_path`` its pending contacts are planned instead of the list.
    """
    rules = settings.rules()
    known = {a.strip().lower() for a in agents} if agents else None
    summary = summary if summary is not None else PlanSummary()
    path = Path(journal_path) if journal_path is not None else None
    if path is not None and Journal.exists(path):
        with Journal.open(path, read_only=True) as journal:
            summary.from_journal = True
            counts = journal.contacts.count_by("status")
            summary.other_statuses = {k: v for k, v in counts.items() if k != ContactStatus.PENDING}
            for record in journal.contacts.all(status=ContactStatus.PENDING):
                contact = record.as_contact()
                due = redecided_due(record)  # as the run will: today's rules, not the last run's
                verdict = _verdict(contact, rules, max(now, due) if due else now, known)
                if due is not None and due > now and verdict.action == "dial":
                    verdict = PlanLine(
                        contact.line,
                        contact.phone_e164,
                        "defer",
                        record.detail or "waiting for a retry",
                        at=due,
                        agent=contact.agent,
                    )
                summary.counts[verdict.action] += 1
                yield verdict
        return
    reader = ContactReader(
        settings.csv_path,
        phone_column=settings.phone_column,
        default_country=settings.default_country,
        strict=False,
    )
    shown = 0
    for contact in reader:
        problems = reader.report.problems
        while shown < len(problems) and problems[shown].line < contact.line:
            summary.counts["refused"] += 1
            yield _refused(problems[shown])
            shown += 1
        verdict = _verdict(contact, rules, now, known)
        summary.counts[verdict.action] += 1
        yield verdict
    for problem in reader.report.problems[shown:]:
        summary.counts["refused"] += 1
        yield _refused(problem)
    hidden = reader.report.problem_count - len(reader.report.problems)
    if hidden > 0:
        summary.counts["refused"] += hidden
