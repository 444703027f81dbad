import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gcdial.campaign.csvinput import Contact, RowProblem
from gcdial.campaign.journal import (
    SCHEMA_VERSION,
    AttemptState,
    ContactStatus,
    Journal,
    JournalError,
    JournalLockedError,
    JournalMismatchError,
    JournalSchemaError,
    page_key,
)
from gcdial.errors import InputError
from gcdial.monitor.wrapup import Wrapup
from old_journals import back_to_schema

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def contacts(n: int) -> list[Contact]:
    return [
        Contact(line=i + 2, phone_e164=f"+1415555{i:04d}", name=f"c{i}", attributes={"k": "v"})
        for i in range(n)
    ]


def new_journal(tmp_path: Path, n: int = 3) -> Journal:
    journal = Journal.create(
        tmp_path / "c.db", name="spring", csv_path="list.csv", csv_fingerprint="f" * 64
    )
    journal.contacts.add(contacts(n))
    return journal


def test_create_and_reopen(tmp_path: Path) -> None:
    clock = Clock()
    with Journal.create(
        tmp_path / "c.db",
        name="spring",
        csv_path="list.csv",
        csv_fingerprint="abc",
        settings={"max_attempts": 3},
        clock=clock,
    ) as journal:
        assert journal.contacts.add(contacts(3)) == 3
        assert not journal.contacts.loaded
        journal.contacts.finish_loading(rows=4, valid=3, refused=1)
    with Journal.open(tmp_path / "c.db", expect_name="spring", expect_fingerprint="abc") as again:
        assert again.contacts.loaded
        info = again.info()
        assert (info.name, info.csv_path, info.csv_fingerprint) == ("spring", "list.csv", "abc")
        assert again.settings() == {"max_attempts": 3}
        records = list(again.contacts.all())
        assert [r.phone for r in records] == ["+14155550000", "+14155550001", "+14155550002"]
        assert records[0].attributes == {"k": "v"}
        assert records[0].status is ContactStatus.PENDING
        assert records[0].as_contact() == contacts(1)[0]
    conn = sqlite3.connect(tmp_path / "c.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_a_placed_call_whose_end_was_never_seen_needs_review(tmp_path: Path) -> None:
    with new_journal(tmp_path) as journal:
        attempt = journal.attempts.begin(1, agent_id="u-1")
        journal.attempts.mark_accepted(attempt, "conv-1")
        journal.attempts.record_outcome(attempt, "unknown", detail="lost track of the call")
        record = journal.contacts.get(1)
        assert (record.status, record.outcome) == (ContactStatus.UNKNOWN, "unknown")
        with pytest.raises(JournalError):
            journal.attempts.begin(1, agent_id="u-2")


def test_reloading_contacts_is_idempotent(tmp_path: Path) -> None:
    with new_journal(tmp_path, 3) as journal:
        assert journal.contacts.add(contacts(5)) == 2
        assert len(list(journal.contacts.all())) == 5


def test_attempt_lifecycle_and_events(tmp_path: Path) -> None:
    with new_journal(tmp_path) as journal:
        attempt = journal.attempts.begin(1, agent_id="u-1", agent="alice@example.com")
        assert journal.contacts.get(1).status is ContactStatus.ACTIVE
        assert [a.id for a in journal.attempts.in_flight()] == [attempt]
        journal.attempts.mark_accepted(attempt, "conv-1")
        assert journal.attempts.in_flight()[0].conversation_id == "conv-1"
        retry = T0 + timedelta(hours=1)
        journal.attempts.record_outcome(attempt, "no_answer", retry_at=retry)
        record = journal.contacts.get(1)
        assert (record.status, record.outcome, record.next_at) == (
            ContactStatus.PENDING,
            "no_answer",
            retry,
        )
        assert journal.attempts.in_flight() == []
        second = journal.attempts.begin(1, agent_id="u-2")
        assert journal.attempts.get(second).number == 2
        journal.attempts.mark_accepted(second, "conv-2")
        journal.attempts.record_outcome(second, "answered")
        record = journal.contacts.get(1)
        assert (record.status, record.outcome, record.attempts) == (
            ContactStatus.DONE,
            "answered",
            2,
        )
        kinds = [e["kind"] for e in journal.events.all()]
        assert kinds == [
            "campaign.created",
            "attempt.intent",
            "attempt.accepted",
            "attempt.ended",
            "attempt.intent",
            "attempt.accepted",
            "attempt.ended",
        ]


def test_never_begins_a_second_attempt_while_one_is_unresolved(tmp_path: Path) -> None:
    with new_journal(tmp_path) as journal:
        attempt = journal.attempts.begin(1, agent_id="u-1")
        with pytest.raises(JournalError, match="not pending"):
            journal.attempts.begin(1, agent_id="u-2")
        journal.attempts.mark_unknown(attempt, "timeout after sending")
        assert journal.contacts.get(1).status is ContactStatus.UNKNOWN
        with pytest.raises(JournalError):
            journal.attempts.begin(1, agent_id="u-2")
        # Reconciliation may later find the conversation and settle it.
        journal.attempts.mark_accepted(attempt, "conv-9")
        with pytest.raises(JournalError, match="is active"):
            journal.attempts.begin(1, agent_id="u-2")
        journal.attempts.record_outcome(attempt, "answered")
        assert journal.contacts.get(1).status is ContactStatus.DONE


def test_unresolved_attempt_blocks_dialing_even_if_contact_looks_pending(tmp_path: Path) -> None:
    with new_journal(tmp_path) as journal:
        attempt = journal.attempts.begin(1, agent_id="u-1")
        journal.attempts.mark_unknown(attempt, "connection dropped after sending")
        # Someone edits the contact back to pending by hand: the unknown attempt still blocks.
        conn = sqlite3.connect(tmp_path / "c.db")
        conn.execute("UPDATE campaign_contacts SET status = 'pending' WHERE id = 1")
        conn.commit()
        conn.close()
        with pytest.raises(JournalError, match=f"already has attempt {attempt} in state unknown"):
            journal.attempts.begin(1, agent_id="u-2")


def test_not_sent_does_not_count_and_may_retry(tmp_path: Path) -> None:
    with new_journal(tmp_path) as journal:
        attempt = journal.attempts.begin(2, agent_id="u-1")
        journal.attempts.mark_not_sent(
            attempt, "rate limited", error_code="too.many.requests", retry_at=T0, outcome="refused"
        )
        record = journal.contacts.get(2)
        assert (record.status, record.attempts) == (ContactStatus.PENDING, 0)
        failed = journal.attempts.begin(2, agent_id="u-1")
        journal.attempts.mark_not_sent(failed, "no station", error_code="x", context_id="ctx-1")
        record = journal.contacts.get(2)
        assert (record.status, record.outcome) == (ContactStatus.DONE, "not_sent")
        assert journal.attempts.get(failed).context_id == "ctx-1"
        with pytest.raises(JournalError, match="expected intent"):
            journal.attempts.mark_not_sent(failed, "again")


def test_defer_skip_and_due_order(tmp_path: Path) -> None:
    with new_journal(tmp_path, 4) as journal:
        journal.pending.defer(1, T0 + timedelta(hours=2), "outside calling hours")
        journal.pending.defer(2, T0 + timedelta(hours=1), "outside calling hours")
        journal.pending.skip(3, "dnc", "on the do-not-call list")
        due = journal.pending.page(limit=10)
        assert [c.id for c in due] == [4, 2, 1]
        first_page = journal.pending.page(limit=2)
        rest = journal.pending.page(limit=2, after=page_key(first_page[-1]))
        assert [c.id for c in first_page + rest] == [4, 2, 1]
        assert journal.contacts.get(3).status is ContactStatus.SKIPPED
        assert journal.contacts.count_by("status") == {"pending": 3, "skipped": 1}


def test_skipped_rows_recorded(tmp_path: Path) -> None:
    with new_journal(tmp_path) as journal:
        problem = RowProblem("list.csv", 7, "phone", "no phone number", "Fill it in.", "invalid")
        journal.contacts.add_skipped_rows([problem, problem])
        assert journal.contacts.skipped_rows() == [problem]


def test_second_process_is_refused_while_first_holds_it(tmp_path: Path) -> None:
    journal = new_journal(tmp_path)
    try:
        with pytest.raises(JournalLockedError, match=f"pid {os.getpid()}") as info:
            Journal.open(tmp_path / "c.db")
        assert isinstance(info.value, InputError)
        code = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys\nfrom gcdial.campaign.journal import Journal, JournalLockedError\n"
                f"try:\n    Journal.open({str(tmp_path / 'c.db')!r})\n"
                "except JournalLockedError:\n    sys.exit(7)\n",
            ],
            check=False,
        ).returncode
        assert code == 7
        with Journal.open(tmp_path / "c.db", read_only=True) as reader:
            assert len(list(reader.contacts.all())) == 3
            with pytest.raises(JournalError, match="read-only"):
                reader.events.record("x")
    finally:
        journal.close()
    Journal.open(tmp_path / "c.db").close()


KILLED_WRITER = textwrap.dedent(
    """
    import os, sys
    from gcdial.campaign.journal import Journal
    journal = Journal.open(sys.argv[1])
    first = journal.attempts.begin(1, agent_id="u-1")
    journal.attempts.mark_accepted(first, "conv-1")
    journal.attempts.begin(2, agent_id="u-2")
    print("intent committed", flush=True)
    sys.stdin.readline()
    """
)


def test_intent_survives_kill_9_and_lock_is_released(tmp_path: Path) -> None:
    new_journal(tmp_path).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path / "c.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "intent committed"
        with pytest.raises(JournalLockedError):
            Journal.open(tmp_path / "c.db")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
    with Journal.open(tmp_path / "c.db") as journal:
        flight = journal.attempts.in_flight()
        assert [(a.contact_id, a.state, a.conversation_id) for a in flight] == [
            (1, AttemptState.ACCEPTED, "conv-1"),
            (2, AttemptState.INTENT, None),
        ]
        assert journal.contacts.get(2).status is ContactStatus.ACTIVE


def test_refuses_another_campaign_or_list(tmp_path: Path) -> None:
    new_journal(tmp_path).close()
    with pytest.raises(JournalMismatchError, match="belongs to campaign 'spring'"):
        Journal.open(tmp_path / "c.db", expect_name="autumn")
    with pytest.raises(JournalMismatchError, match="contact list differs"):
        Journal.open(tmp_path / "c.db", expect_fingerprint="0" * 64)
    # A refused open must not leave the lock held.
    Journal.open(tmp_path / "c.db").close()


def test_refuses_newer_schema(tmp_path: Path) -> None:
    new_journal(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "c.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(JournalSchemaError, match="newer gcdial") as info:
        Journal.open(tmp_path / "c.db")
    assert "Upgrade gcdial" in str(info.value)


def test_refuses_files_that_are_not_journals(tmp_path: Path) -> None:
    text = tmp_path / "list.csv"
    text.write_text("phone\n+14155550100\n" * 100)
    with pytest.raises(JournalSchemaError, match="not a gcdial journal"):
        Journal.open(text)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalSchemaError, match="not a gcdial journal"):
        Journal.open(other)
    with pytest.raises(JournalError, match="No journal"):
        Journal.open(tmp_path / "missing.db")
    with pytest.raises(JournalError, match="already exists"):
        Journal.create(other, name="x", csv_path="x", csv_fingerprint="x")


def test_naive_times_refused(tmp_path: Path) -> None:
    with new_journal(tmp_path) as journal, pytest.raises(ValueError, match="timezone-aware"):
        journal.pending.defer(1, datetime(2026, 1, 1, 9, 0), "naive")


DIES_WHILE_CREATING = textwrap.dedent(
    """
    import os, sys
    from gcdial.campaign import journalhome
    from gcdial.campaign.journal import Journal
    if sys.argv[2] == "before-rename":
        journalhome.os.replace = lambda *a: os.kill(os.getpid(), 9)
    Journal.create(sys.argv[1], name="x", csv_path="x.csv", csv_fingerprint="f")
    """
)


@pytest.mark.parametrize("moment", ["before-rename", "random"])
def test_a_kill_9_while_creating_leaves_no_half_made_journal(tmp_path: Path, moment: str) -> None:
    path = tmp_path / "c.db"
    rounds = 1 if moment == "before-rename" else 6
    for n in range(rounds):
        proc = subprocess.Popen([sys.executable, "-c", DIES_WHILE_CREATING, str(path), moment])
        if moment == "random":
            # Python starts in ~50-150 ms; kill somewhere around the creation.
            time.sleep(0.05 + 0.03 * n)
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
        if Journal.exists(path):
            with Journal.open(path) as journal:  # complete: resumable
                assert journal.info().name == "x"
            path.unlink()
        # Whatever the moment, a new journal can be created at the same path, and no temporary
        # file is left beside it.
        Journal.create(path, name="y", csv_path="y.csv", csv_fingerprint="f").close()
        assert sorted(p.name for p in tmp_path.iterdir() if "new" in p.name) == []
        path.unlink()


def test_a_half_made_journal_of_an_older_gcdial_is_finished_not_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    sqlite3.connect(tmp_path / "bare.db").close()  # an SQLite file with nothing in it
    conn = sqlite3.connect(tmp_path / "bare.db")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    for path in (empty, tmp_path / "bare.db"):
        assert not Journal.exists(path)
        Journal.create(path, name="x", csv_path="x.csv", csv_fingerprint="f").close()
        Journal.open(path).close()


def _damage(path: Path, how: str) -> None:
    if how == "garbage":
        path.write_bytes(os.urandom(8192))
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif how == "table-missing":
        conn = sqlite3.connect(path)
        conn.execute("DROP TABLE campaign_attempts")
        conn.commit()
        conn.close()
    elif how == "newer-schema":
        conn = sqlite3.connect(path)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
        conn.commit()
        conn.close()
    elif how == "no-schema":
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA user_version = 0")
        conn.commit()
        conn.close()


@pytest.mark.parametrize(
    "how", ["garbage", "truncated", "table-missing", "newer-schema", "no-schema"]
)
@pytest.mark.parametrize("read_only", [False, True])
def test_every_unreadable_journal_is_a_clear_error_naming_the_file(
    tmp_path: Path, how: str, read_only: bool
) -> None:
    with new_journal(tmp_path, n=400) as journal:
        for cid in range(1, 40):
            journal.attempts.begin(cid, agent_id="u-1")
    path = tmp_path / "c.db"
    _damage(path, how)

    def read_all() -> None:
        # Some damage is found on open, some only when a page is read: both are JournalErrors.
        with Journal.open(path, read_only=read_only) as journal:
            list(journal.contacts.all())
            journal.attempts.all()
            journal.events.all()

    with pytest.raises(JournalError) as info:
        read_all()
    assert str(path) in str(info.value)
    assert info.value.hint


def test_a_version_1_journal_is_read_as_is_and_migrated_when_resumed(tmp_path: Path) -> None:
    with new_journal(tmp_path) as journal:
        attempt = journal.attempts.begin(1, agent_id="u-1")
        journal.attempts.mark_accepted(attempt, "conv-1")
    path = tmp_path / "c.db"
    back_to_schema(path, 1)
    with Journal.open(path, read_only=True) as reader:
        assert reader.attempts.get(attempt).talk_s is None
    with Journal.open(path) as journal:
        journal.attempts.record_outcome(attempt, "answered", talk_s=12.5)
        assert journal.attempts.get(attempt).talk_s == 12.5
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_a_version_2_journal_gains_the_attempt_bounds_when_resumed(tmp_path: Path) -> None:
    with new_journal(tmp_path) as journal:
        old = journal.attempts.begin(1, agent_id="u-1", tag="t-1")
    path = tmp_path / "c.db"
    back_to_schema(path, 2)
    with Journal.open(path, read_only=True) as reader:
        before = reader.attempts.get(old)
        assert (before.tag, before.sent_after, before.match_after) == ("t-1", None, None)
    sent_after = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
    match_after = datetime(2026, 11, 30, 12, 0, 4, 250_999, tzinfo=UTC)
    with Journal.open(path) as journal:
        assert journal.attempts.get(old).match_after is None  # an older row: as before
        journal.attempts.mark_unknown(old, "lost")
        journal.contacts.record_verdict(1, placed=False, note="proven not placed")
        new = journal.attempts.begin(
            1, agent_id="u-1", tag="t-2", sent_after=sent_after, match_after=match_after
        )
    with Journal.open(path, read_only=True) as reader:
        kept = reader.attempts.get(new)
        kinds = [e["kind"] for e in reader.events.all()]
    assert kept.sent_after == sent_after
    # Kept to the millisecond, rounded down: a bound is never later than the one taken.
    assert kept.match_after == match_after.replace(microsecond=250_000)
    assert "journal.migrated" in kinds
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    conn.close()


def test_a_version_3_journal_gains_the_wrapup_and_the_dnc_list_when_resumed(
    tmp_path: Path,
) -> None:
    with new_journal(tmp_path) as journal:
        attempt = journal.attempts.begin(1, agent_id="u-1")
        journal.attempts.mark_accepted(attempt, "conv-1")
        phone = journal.contacts.get(1).phone
    path = tmp_path / "c.db"
    back_to_schema(path, 3)
    with Journal.open(path, read_only=True) as reader:
        assert reader.attempts.get(attempt).wrapup is None
        assert reader.attempts.dnc_numbers() == set()
    wrapup = Wrapup(code="wc-dnc", name="Do not call", notes="asked", at=datetime.now(UTC))
    with Journal.open(path) as journal:
        journal.attempts.record_outcome(
            attempt, "answered", wrapup=wrapup, wrapup_action="dnc", dnc=True
        )
    with Journal.open(path, read_only=True) as reader:
        kept = reader.attempts.get(attempt)
        assert kept.wrapup is not None
        assert (kept.wrapup.code, kept.wrapup.name, kept.wrapup.notes) == (
            "wc-dnc",
            "Do not call",
            "asked",
        )
        assert kept.wrapup_action == "dnc"
        assert reader.attempts.dnc_numbers() == {phone}
        assert "journal.migrated" in [e["kind"] for e in reader.events.all()]


def _everything(journal: Journal) -> dict[str, object]:
    """Every row of a journal as the journal reads it back."""
    return {
        "info": journal.info(),
        "settings": journal.settings(),
        "loaded": journal.contacts.loaded,
        "contacts": list(journal.contacts.all()),
        "attempts": journal.attempts.all(),
        "events": journal.events.all(),
        "skipped": journal.contacts.skipped_rows(),
        "dnc": journal.attempts.dnc_numbers(),
        "note": journal.get_meta("note"),
    }


def _rich_journal(path: Path) -> None:
    with Journal.create(
        path, name="spring", csv_path="list.csv", csv_fingerprint="f" * 64, settings={"a": 1}
    ) as journal:
        journal.contacts.add(contacts(5))
        journal.contacts.add_skipped_rows(
            [RowProblem("list.csv", 9, "phone", "bad number", "fix", "k")]
        )
        journal.contacts.finish_loading(rows=6, valid=5, refused=1, attribute_columns=["k"])
        journal.set_meta("note", "kept")
        first = journal.attempts.begin(1, agent_id="u-1", tag="t-1", sent_after=T0)
        journal.attempts.mark_accepted(first, "conv-1")
        journal.attempts.record_outcome(first, "answered", talk_s=3.5, dnc=True)
        lost = journal.attempts.begin(2, agent_id="u-1")
        journal.attempts.mark_unknown(lost, "dropped")
        journal.pending.defer(3, T0 + timedelta(hours=2), "window")
        journal.pending.skip(4, "dnc", "listed")


@pytest.mark.parametrize("version", [3, 4])
def test_an_old_journal_migrates_on_open_and_keeps_every_row(tmp_path: Path, version: int) -> None:
    path = tmp_path / "c.db"
    _rich_journal(path)
    with Journal.open(path, read_only=True) as reader:
        before = _everything(reader)
    back_to_schema(path, version)
    with Journal.open(path, read_only=True) as reader:  # read as it is, not migrated
        as_is = _everything(reader)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == version
    conn.close()
    with Journal.open(path) as journal:
        after = _everything(journal)
        journal.verify()
        attempt = journal.attempts.begin(5, agent_id="u-2")
        assert attempt > max(a.id for a in before["attempts"])  # type: ignore[attr-defined]
    conn = sqlite3.connect(path)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    assert not tables & {"meta", "contacts", "attempts", "events", "skipped_rows", "dnc_numbers"}
    migrated = [e for e in after["events"] if e["kind"] == "journal.migrated"]  # type: ignore[attr-defined]
    assert [e["detail"] for e in migrated] == [f"schema {v}" for v in range(version + 1, 6)]
    after["events"] = [e for e in after["events"] if e["kind"] != "journal.migrated"]  # type: ignore[attr-defined]
    if version == 3:  # schema 3 had no wrap-ups nor do-not-call list: those read as empty
        assert as_is["dnc"] == after["dnc"] == set()
        for record in (before, as_is, after):
            record["dnc"] = set()
    assert as_is == before
    assert after == before


def test_a_damaged_old_journal_is_a_clear_error_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _rich_journal(path)
    back_to_schema(path, 4)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE campaign_events (x TEXT)")  # in the way of the move to schema 5
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(JournalSchemaError) as info:
        Journal.open(path)
    assert str(path) in str(info.value)
    assert "cannot be brought to schema 5" in str(info.value)
    assert path.read_bytes() == before
    with Journal.open(path, read_only=True) as reader:  # still read as it was
        assert len(list(reader.contacts.all())) == 5
