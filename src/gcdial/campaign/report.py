"""What a campaign did, read from its journal: a status summary and a per-contact report.

Both only read the journal (open it with ``read_only=True``), so they work while a campaign runs.

The report's CSV is made safe to open in a spreadsheet (the OWASP CSV-injection rule): a cell
that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a leading
``'`` so that it is shown as text, never run as a formula. Numbers are the exception, kept as they
are because a spreadsheet reads them as numbers, not formulas: a phone number in E.164
(``+14155550100``) and a plain signed number (``-3``, ``+2.5``). The JSON report is written
verbatim (it is data, not a sheet).
"""

from __future__ import annotations

import csv
import heapq
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, TextIO

from gcdial.campaign.journal import Attempt, AttemptState, ContactRecord, ContactStatus, Journal

__all__ = [
    "REPORT_COLUMNS",
    "CampaignStatus",
    "campaign_status",
    "csv_safe",
    "report_columns",
    "report_rows",
    "write_report",
]

REPORT_COLUMNS: Final = (
    "line",
    "phone",
    "name",
    "external_id",
    "status",
    "outcome",
    "detail",
    "attempts",
    "agent",
    "conversation_id",
    "first_attempt_at",
    "last_attempt_at",
    "ended_at",
    "error_code",
    "context_id",
    "talk_time_s",
    "wrapup_code",
    "wrapup_name",
    "wrapup_notes",
    "wrapup_action",
)
"""The report's own columns; the list's own follow them (see :func:`report_columns`)."""

_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
_SAFE_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)")
"""Values a spreadsheet reads as a number (E.164 phone numbers included): never a formula."""

ReportRow = dict[str, str | int | float | None]


@dataclass(frozen=True, slots=True)
class CampaignStatus:
    """Counts of a campaign: contacts by status and outcome, attempts by state."""

    name: str
    csv_path: str
    created_at: str
    contacts_loaded: bool
    rows_refused: int
    contacts: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    due_now: int = 0
    next_due: datetime | None = None
    running_pid: int | None = None
    dispositions: dict[str, int] = field(default_factory=dict)
    """Calls by the agent's wrap-up (its name, else its code id)."""
    wrapups_missing: int = 0
    """Calls whose wrap-up was waited for and never came (listed for review)."""

    @property
    def total(self) -> int:
        """Contacts in the journal."""
        return sum(self.contacts.values())

    @property
    def in_flight(self) -> int:
        """Attempts begun and not yet settled."""
        return self.attempts.get(AttemptState.INTENT, 0) + self.attempts.get(
            AttemptState.ACCEPTED, 0
        )

    @property
    def needs_review(self) -> int:
        """Contacts whose last call has an unknown outcome: a human must check them."""
        return self.contacts.get(ContactStatus.UNKNOWN, 0)

    @property
    def running(self) -> bool:
        """Whether a gcdial process holds the journal (the campaign is running right now)."""
        return self.running_pid is not None

    @property
    def finished(self) -> bool:
        """Nothing pending, active or in flight."""
        open_ = self.contacts.get(ContactStatus.PENDING, 0) + self.contacts.get(
            ContactStatus.ACTIVE, 0
        )
        return self.contacts_loaded and open_ == 0 and self.in_flight == 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "campaign": self.name,
            "contact_list": self.csv_path,
            "created_at": self.created_at,
            "contacts_loaded": self.contacts_loaded,
            "contacts": self.total,
            "rows_refused": self.rows_refused,
            "by_status": dict(sorted(self.contacts.items())),
            "by_outcome": dict(sorted(self.outcomes.items())),
            "attempts_by_state": dict(sorted(self.attempts.items())),
            "in_flight": self.in_flight,
            "needs_review": self.needs_review,
            "finished": self.finished,
            "running": self.running,
            "running_pid": self.running_pid or None,
            "due_now": self.due_now,
            "next_due": _iso(self.next_due),
            "by_disposition": dict(sorted(self.dispositions.items())),
            "wrapups_missing": self.wrapups_missing,
        }

    def lines(self, *, now: datetime | None = None) -> list[str]:
        """A plain-text summary, one fact per line."""
        out = [
            f"Campaign {self.name!r} ({self.csv_path}), started {self.created_at}",
            f"Contacts: {self.total}"
            + (f", {self.rows_refused} CSV rows refused" if self.rows_refused else "")
            + ("" if self.contacts_loaded else " (list not fully loaded yet)"),
            "By status: " + _counts(self.contacts),
        ]
        if self.outcomes:
            out.append("By outcome: " + _counts(self.outcomes))
        out.append("Attempts: " + (_counts(self.attempts) or "none"))
        if self.dispositions:
            out.append("Calls by wrap-up: " + _counts(self.dispositions))
        if self.wrapups_missing:
            out.append(
                f"Wrap-up never arrived: {self.wrapups_missing} call(s) (see campaign review)"
            )
        if self.in_flight:
            out.append(f"In flight: {self.in_flight} (reconciled on resume)")
        if self.needs_review:
            out.append(
                f"Needs review: {self.needs_review} contact(s) whose call may or may not have "
                "been placed; they are never re-dialed automatically (see the report)."
            )
        if self.due_now:
            out.append(f"Due now: {self.due_now} contact(s)")
        if self.next_due is not None:
            moment = now or datetime.now(UTC)
            when = "now" if self.next_due <= moment else _iso(self.next_due)
            out.append(f"Next contact due: {when}" if not self.due_now else f"Next later: {when}")
        if self.running:
            pid = f" (pid {self.running_pid})" if self.running_pid else ""
            out.append(f"Running now{pid}: these counts change as it dials.")
        elif self.finished:
            out.append("Finished.")
        else:
            out.append("Not finished: resume to continue (gcdial campaign resume JOURNAL).")
        return out


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key or 'none'} {n}" for key, n in sorted(counts.items()))


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def campaign_status(journal: Journal, *, now: datetime | None = None) -> CampaignStatus:
    """Summarise the journal: counts by contact status and outcome, attempts by state, what is
    due, and (for a journal opened read-only) whether a process is running the campaign."""
    info = journal.info()
    outcomes = journal.contacts.count_by("outcome")
    outcomes.pop("", None)
    due_now, next_due = journal.pending.due_summary(now or datetime.now(UTC))
    dispositions, missing = journal.attempts.wrapup_counts()
    return CampaignStatus(
        name=info.name,
        csv_path=info.csv_path,
        created_at=info.created_at,
        contacts_loaded=journal.contacts.loaded,
        rows_refused=len(journal.contacts.skipped_rows()),
        contacts=journal.contacts.count_by("status"),
        outcomes=outcomes,
        attempts=journal.attempts.count_by("state"),
        due_now=due_now,
        next_due=next_due,
        running_pid=Journal.holder(journal.path) if journal.read_only else None,
        dispositions=dispositions,
        wrapups_missing=missing,
    )


def report_columns(journal: Journal) -> tuple[str, ...]:
    """The report's columns, then the contact list's own (named ``csv_<name>`` when a name is
    already a report column)."""
    return REPORT_COLUMNS + tuple(
        _list_column(name) for name in journal.contacts.attribute_columns()
    )


def _list_column(name: str) -> str:
    return f"csv_{name}" if name in REPORT_COLUMNS else name


def report_rows(journal: Journal, *, include_refused: bool = True) -> Iterator[ReportRow]:
    """One row per contact in list order (and per refused CSV row, status ``refused``), streamed."""
    contacts = (_contact_row(*summary) for summary in journal.contacts.summaries())
    if not include_refused:
        yield from contacts
        return
    refused: Iterator[ReportRow] = (
        {
            **dict.fromkeys(REPORT_COLUMNS),
            "line": p.line,
            "status": "refused",
            "outcome": p.kind,
            "detail": f"{p.column + ': ' if p.column else ''}{p.reason}",
            "attempts": 0,
        }
        for p in journal.contacts.skipped_rows()
    )
    yield from heapq.merge(contacts, refused, key=lambda row: int(row["line"] or 0))


def _contact_row(
    contact: ContactRecord, last: Attempt | None, first_at: datetime | None
) -> ReportRow:
    row: ReportRow = {
        "line": contact.line,
        "phone": contact.phone,
        "name": contact.name,
        "external_id": contact.external_id,
        "status": str(contact.status),
        "outcome": contact.outcome,
        "detail": contact.detail,
        "attempts": contact.attempts,
        "agent": (last.agent or last.agent_id) if last else None,
        "conversation_id": last.conversation_id if last else None,
        "first_attempt_at": _iso(first_at),
        "last_attempt_at": _iso(last.created_at) if last else None,
        "ended_at": _iso(last.ended_at) if last else None,
        "error_code": last.error_code if last else None,
        "context_id": last.context_id if last else None,
        "talk_time_s": _seconds(last.talk_s) if last else None,
        "wrapup_code": last.wrapup.code if last and last.wrapup else None,
        "wrapup_name": last.wrapup.name if last and last.wrapup else None,
        "wrapup_notes": last.wrapup.notes if last and last.wrapup else None,
        "wrapup_action": last.wrapup_action if last else None,
    }
    for key, value in contact.attributes.items():
        row[_list_column(key)] = value
    return row


def _seconds(value: float | None) -> int | float | None:
    if value is None:
        return None
    return round(value, 1) if value % 1 else int(value)


def csv_safe(value: object) -> object:
    """``value`` as a spreadsheet will show it, never run it: text that a spreadsheet would read
    as a formula gets a leading ``'``; numbers (E.164 phone numbers included) stay as they are."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    if _SAFE_NUMBER.fullmatch(value):
        return value
    return "'" + value


def write_report(
    journal: Journal,
    out: TextIO,
    *,
    fmt: Literal["csv", "json"] = "csv",
    include_refused: bool = True,
) -> int:
    """Write the per-contact report as CSV (with a header) or a JSON array; return the row count."""
    rows = report_rows(journal, include_refused=include_refused)
    count = 0
    if fmt == "csv":
        columns = report_columns(journal)
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writerow({c: csv_safe(c) for c in columns})
        for row in rows:
            writer.writerow({key: csv_safe(value) for key, value in row.items()})
            count += 1
        return count
    if fmt != "json":
        raise ValueError(f"unknown report format {fmt!r}")
    out.write("[")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(row, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
