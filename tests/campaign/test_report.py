import csv
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gcdial.campaign.csvinput import read_contacts
from gcdial.campaign.journal import Journal
from gcdial.campaign.report import (
    REPORT_COLUMNS,
    campaign_status,
    csv_safe,
    report_rows,
    write_report,
)

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def played_campaign(tmp_path: Path) -> Path:
    """A journal where every kind of contact fate happened, loaded from a real CSV."""
    csv_path = tmp_path / "list.csv"
    csv_path.write_text(
        "phone,name,external_id\n"
        "+14155550100,Ann,a\n"
        "+14155550150,Ben,b\n"
        "12,Bad,c\n"
        "+14155550170,Cat,d\n"
        "+14155550101,Dan,e\n"
        "+14155550102,Eve,f\n"
        "+14155550103,Fay,g\n",
        encoding="utf-8",
    )
    journal_path = tmp_path / "list.db"
    reader = read_contacts(csv_path)
    with Journal.create(
        journal_path, name="spring", csv_path=str(csv_path), csv_fingerprint="x", clock=Clock()
    ) as journal:
        journal.contacts.add(reader)
        journal.contacts.add_skipped_rows(reader.report.problems)
        journal.contacts.finish_loading(
            rows=reader.report.rows,
            valid=reader.report.valid,
            refused=reader.report.problem_count,
        )
        ann = journal.attempts.begin(1, agent_id="u-a", agent="alice@example.com")
        journal.attempts.mark_accepted(ann, "conv-ann")
        journal.attempts.record_outcome(ann, "answered")
        ben = journal.attempts.begin(2, agent_id="u-b", agent="bob@example.com")
        journal.attempts.mark_accepted(ben, "conv-ben")
        journal.attempts.record_outcome(ben, "no_answer", retry_at=T0 + timedelta(hours=1))
        cat = journal.attempts.begin(3, agent_id="u-a")
        journal.attempts.mark_not_sent(cat, "refused", error_code="bad.request", context_id="ctx-9")
        dan = journal.attempts.begin(4, agent_id="u-b", agent="bob@example.com")
        journal.attempts.mark_unknown(dan, "timed out after sending")
        journal.pending.skip(5, "do_not_call", "on the do-not-call list")
        journal.attempts.begin(6, agent_id="u-a", agent="alice@example.com")
    return journal_path


def test_status_counts(tmp_path: Path) -> None:
    with Journal.open(played_campaign(tmp_path), read_only=True) as journal:
        status = campaign_status(journal, now=T0)
    assert status.total == 6
    assert status.rows_refused == 1
    assert status.contacts == {"active": 1, "done": 2, "pending": 1, "skipped": 1, "unknown": 1}
    assert status.outcomes == {
        "answered": 1,
        "do_not_call": 1,
        "no_answer": 1,
        "not_sent": 1,
        "unknown": 1,
    }
    assert status.attempts == {"ended": 2, "intent": 1, "not_sent": 1, "unknown": 1}
    assert status.in_flight == 1
    assert status.needs_review == 1
    assert not status.finished
    assert status.next_due == T0 + timedelta(hours=1)
    assert status.due_now == 0
    assert not status.running
    text = "\n".join(status.lines(now=T0))
    assert "Needs review: 1" in text
    assert "In flight: 1" in text
    assert "Next contact due: 2026-03-02T16:00:00Z" in text
    assert json.loads(json.dumps(status.as_dict()))["needs_review"] == 1


def test_report_one_row_per_contact_and_refused_row(tmp_path: Path) -> None:
    with Journal.open(played_campaign(tmp_path), read_only=True) as journal:
        rows = list(report_rows(journal))
    assert [(r["line"], r["status"], r["outcome"]) for r in rows] == [
        (2, "done", "answered"),
        (3, "pending", "no_answer"),
        (4, "refused", "invalid"),
        (5, "done", "not_sent"),
        (6, "unknown", "unknown"),
        (7, "skipped", "do_not_call"),
        (8, "active", None),
    ]
    ann = rows[0]
    assert ann["agent"] == "alice@example.com"
    assert ann["conversation_id"] == "conv-ann"
    assert ann["attempts"] == 1
    assert ann["ended_at"] is not None
    assert str(ann["first_attempt_at"]).endswith("Z")
    assert rows[2]["detail"] == "phone: invalid phone number '12': too short"
    assert rows[3]["error_code"] == "bad.request"
    assert rows[3]["context_id"] == "ctx-9"
    assert rows[3]["attempts"] == 0
    assert rows[4]["detail"] == "timed out after sending"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_write_report(tmp_path: Path, fmt: str) -> None:
    out = io.StringIO()
    with Journal.open(played_campaign(tmp_path), read_only=True) as journal:
        count = write_report(journal, out, fmt=fmt)  # type: ignore[arg-type]
    assert count == 7
    if fmt == "csv":
        parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
        assert tuple(parsed[0]) == REPORT_COLUMNS
        assert parsed[0]["phone"] == "+14155550100"
    else:
        parsed = json.loads(out.getvalue())
        assert parsed[0]["phone"] == "+14155550100"
    assert len(parsed) == 7


def test_empty_report_is_valid_json(tmp_path: Path) -> None:
    with Journal.create(tmp_path / "e.db", name="e", csv_path="e.csv", csv_fingerprint="x") as j:
        out = io.StringIO()
        assert write_report(j, out, fmt="json") == 0
        assert json.loads(out.getvalue()) == []
        status = campaign_status(j)
        assert status.total == 0
        assert not status.finished  # the list was never loaded


def test_status_never_shows_a_placeholder_date_for_contacts_due_now(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    with Journal.create(path, name="f", csv_path="f.csv", csv_fingerprint="x") as journal:
        journal.contacts.add(read_contacts(_list(tmp_path, "phone\n+14155550100\n")))
        status = campaign_status(journal, now=T0)
    assert status.due_now == 1
    assert status.next_due is None
    shown = json.dumps(status.as_dict()) + "\n".join(status.lines(now=T0))
    assert "0001" not in shown
    assert "Due now: 1 contact(s)" in shown


def test_status_says_running_while_a_process_holds_the_journal(tmp_path: Path) -> None:
    path = played_campaign(tmp_path)
    with Journal.open(path) as holder, Journal.open(path, read_only=True) as reader:
        assert holder is not None
        status = campaign_status(reader, now=T0)
        assert status.running_pid == os.getpid()
        text = "\n".join(status.lines(now=T0))
        assert "Running now" in text
        assert "resume to continue" not in text
        assert status.as_dict()["running"] is True
    with Journal.open(path, read_only=True) as reader:
        status = campaign_status(reader, now=T0)
        assert not status.running
        assert "resume to continue" in "\n".join(status.lines(now=T0))


def _list(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "l.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1+cmd|x", "'+1+cmd|x"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("+14155550100", "+14155550100"),
        ("-3", "-3"),
        ("+2.5", "+2.5"),
        ("Ann Lee", "Ann Lee"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_csv_cells_are_never_formulas_but_numbers_stay_readable(cell: str, written: str) -> None:
    assert csv_safe(cell) == written
    assert csv_safe(7) == 7


def test_report_csv_neutralises_formulas_and_carries_the_list_columns(tmp_path: Path) -> None:
    csv_path = _list(
        tmp_path,
        'phone,name,plan,status,note\n+14155550100,"=HYPERLINK(""http://evil"",""x"")",gold,vip,'
        "@SUM(A1)\n+14155550101,Ben,,,plain\n",
    )
    reader = read_contacts(csv_path)
    with Journal.create(
        tmp_path / "l.db", name="l", csv_path=str(csv_path), csv_fingerprint="x"
    ) as journal:
        journal.contacts.add(reader)
        journal.contacts.finish_loading(
            rows=2, valid=2, refused=0, attribute_columns=reader.report.attribute_columns
        )
        ann = journal.attempts.begin(1, agent_id="u-a", agent="=evil()")
        journal.attempts.mark_accepted(ann, "conv-ann")
        journal.attempts.record_outcome(ann, "answered", talk_s=42.0)
        out = io.StringIO()
        write_report(journal, out, fmt="csv")
        as_json = io.StringIO()
        write_report(journal, as_json, fmt="json")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0])[: len(REPORT_COLUMNS)] == REPORT_COLUMNS
    assert tuple(rows[0])[len(REPORT_COLUMNS) :] == ("plan", "csv_status", "note")
    ann_row = rows[0]
    assert ann_row["name"].startswith("'=HYPERLINK")
    assert ann_row["agent"] == "'=evil()"
    assert ann_row["note"] == "'@SUM(A1)"
    assert ann_row["phone"] == "+14155550100"
    assert ann_row["plan"] == "gold"
    assert ann_row["csv_status"] == "vip"
    assert ann_row["status"] == "done"
    assert ann_row["talk_time_s"] == "42"
    assert rows[1]["talk_time_s"] == ""
    assert rows[1]["note"] == "plain"
    data = json.loads(as_json.getvalue())
    assert data[0]["talk_time_s"] == 42
    assert data[0]["name"].startswith("=HYPERLINK")  # JSON is data: kept verbatim
