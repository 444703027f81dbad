"""The journal, through the same code and schema, on its three homes: a one-file journal (the
CLI's), the service's SQLite store file holding two campaigns, and PostgreSQL holding two.

In a shared database a second campaign ("other") is filled with rows of its own first; each test
ends by checking that nothing of it changed, so rows never mix between campaigns.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gcdial.campaign.csvinput import Contact, RowProblem
from gcdial.campaign.journal import (
    AttemptState,
    ContactStatus,
    Fence,
    Journal,
    JournalDatabase,
    JournalDataError,
    JournalError,
    JournalFencedError,
    page_key,
)
from gcdial.monitor.wrapup import Wrapup

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def contacts(n: int, area: str = "415") -> list[Contact]:
    return [
        Contact(line=i + 2, phone_e164=f"+1{area}555{i:04d}", name=f"c{i}", attributes={"k": "v"})
        for i in range(n)
    ]


@dataclass
class Home:
    """Where a test's journal lives, and how to reach its rows behind the journal's back."""

    kind: str
    create: Callable[..., Journal]
    reopen: Callable[[], Journal]
    sql: Callable[..., list[tuple[Any, ...]]]
    campaign: str
    snapshot: Callable[[], object]


def _sqlite_sql(path: Path) -> Callable[..., list[tuple[Any, ...]]]:
    def run(text: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            return list(conn.execute(text, params).fetchall())
        finally:
            conn.close()

    return run


def _pg_sql(url: str) -> Callable[..., list[tuple[Any, ...]]]:
    def run(text: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(url, autocommit=True) as conn:
            cursor = conn.execute(text.replace("?", "%s"), params)
            return list(cursor.fetchall()) if cursor.description else []

    return run


def _other_rows(sql: Callable[..., list[tuple[Any, ...]]]) -> object:
    """Every row of the other campaign, in a stable order."""
    tables = ("campaign_meta", "campaign_contacts", "campaign_attempts", "campaign_events")
    return [
        sorted(map(repr, sql(f"SELECT * FROM {t} WHERE campaign_id = 'other'")))  # noqa: S608
        for t in tables
    ]


def _fill_other(db: JournalDatabase) -> None:
    with Journal.create_in(db, "other", name="other", csv_fingerprint="o" * 64) as other:
        other.contacts.add(contacts(4))  # the same numbers and lines: per-campaign keys
        attempt = other.attempts.begin(1, agent_id="u-other")
        other.attempts.mark_accepted(attempt, "conv-other")
        other.set_meta("note", "kept")


BACKENDS = ["file", "sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Home]:
    kind = request.param
    if kind == "file":
        path = tmp_path / "c.db"

        def create_file(**kw: Any) -> Journal:
            return Journal.create(path, **kw)

        sql = _sqlite_sql(path)
        yield Home(kind, create_file, lambda: Journal.open(path), sql, "local", lambda: None)
        return
    if kind == "sqlite":
        store = tmp_path / "serve.sqlite3"
        db = JournalDatabase.sqlite(store)
        sql = _sqlite_sql(store)
    else:
        url = request.getfixturevalue("pg_url")
        db = JournalDatabase.postgres(url)
        sql = _pg_sql(url)
    db.ensure_schema()
    db.ensure_schema()  # idempotent
    _fill_other(db)
    before = _other_rows(sql)

    def create_shared(**kw: Any) -> Journal:
        return Journal.create_in(db, "spring-1", **kw)

    yield Home(
        kind,
        create_shared,
        lambda: Journal.open_in(db, "spring-1"),
        sql,
        "spring-1",
        lambda: _other_rows(sql),
    )
    assert _other_rows(sql) == before, "the other campaign's rows changed"


def new_journal(home: Home, n: int = 3, clock: Clock | None = None) -> Journal:
    journal = home.create(
        name="spring",
        csv_path="list.csv",
        csv_fingerprint="f" * 64,
        settings={"max_attempts": 3},
        clock=clock or Clock(),
    )
    journal.contacts.add(contacts(n))
    return journal


def test_create_load_and_reopen(home: Home) -> None:
    with new_journal(home) as journal:
        assert journal.contacts.add(contacts(5)) == 2  # reloading is idempotent
        journal.contacts.add_skipped_rows(
            [RowProblem("list.csv", 9, "phone", "bad", "fix", "phone")]
        )
        journal.contacts.finish_loading(rows=7, valid=5, refused=1, attribute_columns=["k"])
    with home.reopen() as again:
        assert again.contacts.loaded
        info = again.info()
        assert (info.name, info.csv_path, info.csv_fingerprint) == ("spring", "list.csv", "f" * 64)
        assert again.settings() == {"max_attempts": 3}
        assert [r.phone for r in again.contacts.all()][:2] == ["+14155550000", "+14155550001"]
        assert again.contacts.attribute_columns() == ["k"]
        assert [p.line for p in again.contacts.skipped_rows()] == [9]
        assert again.contacts.at_line(3) is not None
        assert again.contacts.at_line(99) is None
        again.verify()


def test_attempts_outcomes_and_dnc(home: Home) -> None:
    clock = Clock()
    with new_journal(home, clock=clock) as journal:
        ids = [c.id for c in journal.contacts.all()]
        first = journal.attempts.begin(ids[0], agent_id="u-1", agent="alice@example.com", tag="t")
        assert journal.contacts.get(ids[0]).status is ContactStatus.ACTIVE
        assert [a.id for a in journal.attempts.in_flight()] == [first]
        with pytest.raises(JournalError, match="not pending"):
            journal.attempts.begin(ids[0], agent_id="u-2")
        journal.attempts.mark_accepted(first, "conv-1")
        retry = T0 + timedelta(hours=1)
        journal.attempts.record_outcome(first, "no_answer", retry_at=retry, talk_s=0.0)
        record = journal.contacts.get(ids[0])
        assert (record.status, record.next_at) == (ContactStatus.PENDING, retry)
        second = journal.attempts.begin(ids[0], agent_id="u-1")
        assert second > first
        assert journal.attempts.get(second).number == 2
        journal.attempts.mark_accepted(second, "conv-2")
        wrapup = Wrapup(code="wc", name="Do not call", notes=None, at=T0)
        journal.attempts.record_outcome(
            second, "answered", talk_s=12.5, wrapup=wrapup, wrapup_action="dnc", dnc=True
        )
        assert journal.attempts.dnc_numbers() == {"+14155550000"}
        assert journal.attempts.get(second).talk_s == 12.5
        assert journal.attempts.wrapup_counts() == ({"Do not call": 1}, 0)

        lost = journal.attempts.begin(ids[1], agent_id="u-1")
        journal.attempts.mark_unknown(lost, "connection dropped")
        assert [a.id for a in journal.attempts.unresolved()] == [lost]
        journal.contacts.record_verdict(ids[1], placed=False, note="proven", by="ops")
        assert journal.contacts.get(ids[1]).status is ContactStatus.PENDING
        assert journal.contacts.get(ids[1]).attempts == 0
        assert journal.contacts.last_verdict(ids[1]) is not None

        refused = journal.attempts.begin(ids[2], agent_id="u-1")
        journal.attempts.mark_not_sent(refused, "refused", error_code="bad.request")
        assert journal.contacts.get(ids[2]).outcome == "not_sent"
        journal.contacts.reopen(ids[2], "try again")
        assert journal.contacts.get(ids[2]).status is ContactStatus.PENDING

        assert journal.attempts.count_by("state") == {"ended": 2, "not_sent": 2}
        page = journal.attempts.page(limit=2)
        assert [a.id for a in page] == [refused, lost]
        older = journal.attempts.page(limit=10, before=lost, agent="ALICE@example.com")
        assert [a.id for a in older] == [first]
        assert [
            a.id
            for a in journal.attempts.page(
                limit=10, states=[AttemptState.NOT_SENT], outcome="not_sent"
            )
        ] == [refused, lost]
        summaries = list(journal.contacts.summaries())
        assert summaries[0][1] is not None
        assert summaries[0][1].id == second
        assert summaries[0][2] == T0
        kinds = [e["kind"] for e in journal.events.all()]
        assert kinds[0] == "campaign.created"
        assert kinds.count("attempt.intent") == 4
        assert "campaign_id" not in journal.events.all(limit=1)[0]
        assert [e["kind"] for e in journal.events.all(limit=2)] == kinds[-2:]
        assert set(journal.events.of_contacts([ids[1]])[ids[1]][0]) >= {"kind", "at"}
        assert journal.contacts.settled_outcomes() == {"answered": 1}
        assert [t for t in journal.attempts.times(T0)] == [T0] * 4


def test_due_hold_release_defer_and_skip(home: Home) -> None:
    with new_journal(home, n=6) as journal:
        ids = [c.id for c in journal.contacts.all()]
        later = T0 + timedelta(minutes=30)
        journal.pending.defer_many([(ids[0], later, "window"), (ids[1], T0, "retry")])
        journal.pending.skip_many([(ids[5], "dnc", "on the list")])
        journal.pending.hold([ids[2], ids[3]])
        due = journal.pending.due_now(T0, limit=10)
        assert [c.id for c in due] == [ids[1], ids[4]]
        journal.pending.release([ids[2]])
        assert [c.id for c in journal.pending.due_now(T0, limit=10)] == [ids[1], ids[2], ids[4]]
        assert journal.pending.next_due_time() == datetime.min.replace(tzinfo=UTC)
        journal.pending.hold([ids[1], ids[2], ids[4]])
        assert journal.pending.next_due_time() == later
        assert journal.pending.due_summary(T0) == (4, later)
        total, deferred = journal.pending.deferred(T0, limit=5)
        assert (total, [c.id for c in deferred]) == (1, [ids[0]])
        page = journal.pending.page(limit=2)
        rest = journal.pending.page(limit=10, after=page_key(page[-1]))
        assert [c.id for c in page + rest] == [ids[2], ids[3], ids[4], ids[1], ids[0]]
        assert journal.pending.redecide_deferrals() == 2  # both never dialed
        assert journal.contacts.settled_outcomes() == {"dnc": 1}
        journal.pending.finish(ids[4], "max_attempts", "no more")
        assert journal.contacts.get(ids[4]).status is ContactStatus.DONE


def test_agents_pinned_and_reassigned(home: Home) -> None:
    with home.create(name="s", csv_path="l.csv", csv_fingerprint="f") as journal:
        journal.contacts.add(
            [
                Contact(line=2, phone_e164="+14155550100", agent="Ann@x.com"),
                Contact(line=3, phone_e164="+14155550101", agent=" ann@x.com"),
                Contact(line=4, phone_e164="+14155550102", agent="bob@x.com"),
            ]
        )
        assert sorted(journal.pending.pinned().values()) == [1, 2]
        assert journal.pending.reassign("ANN@x.com", "carl@x.com") == 2
        assert journal.pending.pinned() == {"bob@x.com": 1, "carl@x.com": 2}


def test_a_bad_value_is_named_by_verify(home: Home) -> None:
    with new_journal(home) as journal:
        journal.verify()
        first = next(iter(journal.contacts.all())).id
        home.sql(
            "UPDATE campaign_contacts SET next_at = 'garbage' WHERE campaign_id = ? AND id = ?",
            (home.campaign, first),
        )
        with pytest.raises(JournalDataError) as info:
            journal.verify()
        message = str(info.value)
        assert "table campaign_contacts" in message
        assert f"row id {first}" in message
        assert "column next_at is 'garbage'" in message
        with pytest.raises(JournalDataError):
            journal.pending.due_summary(T0)
        home.sql(
            "UPDATE campaign_meta SET value = 'x' WHERE campaign_id = ? AND key = 'settings'",
            (home.campaign,),
        )
        with pytest.raises(JournalDataError, match="column value is 'x'"):
            journal.settings()


# The shared databases only.

SHARED = ["sqlite", "postgres"]


@pytest.fixture(params=SHARED)
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[JournalDatabase, Callable]:  # type: ignore[type-arg]
    if request.param == "sqlite":
        store = tmp_path / "serve.sqlite3"
        db, sql = JournalDatabase.sqlite(store), _sqlite_sql(store)
    else:
        url = request.getfixturevalue("pg_url")
        db, sql = JournalDatabase.postgres(url), _pg_sql(url)
    db.ensure_schema()
    # The store's leases table (schema 8 of the service's store adds ``epoch``).
    sql(
        "CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, "
        "expires_at REAL NOT NULL, epoch INTEGER NOT NULL DEFAULT 0)"
    )
    return db, sql


def _counts(sql: Callable[..., list[tuple[Any, ...]]], campaign: str) -> list[object]:
    return [
        sql(f"SELECT COUNT(*) FROM {t} WHERE campaign_id = ?", (campaign,))[0][0]  # noqa: S608
        for t in ("campaign_attempts", "campaign_events")
    ] + [sql("SELECT status FROM campaign_contacts WHERE campaign_id = ? ORDER BY id", (campaign,))]


def test_a_replica_that_lost_the_lease_cannot_begin_an_attempt(
    shared: tuple[JournalDatabase, Callable[..., list[tuple[Any, ...]]]],
) -> None:
    db, sql = shared
    now = [1_000_000.0]
    sql("INSERT INTO leases (name, owner, expires_at, epoch) VALUES (?, ?, ?, ?)",
        ("campaign:c1", "replica-a", 1_000_030.0, 1))  # fmt: skip
    with Journal.create_in(db, "c1", name="c1", csv_fingerprint="f") as journal:
        journal.contacts.add(contacts(3))
    fence = Fence(lease="campaign:c1", owner="replica-a", epoch=1, now=lambda: now[0])
    with Journal.open_in(db, "c1", fence=fence) as held:
        ids = [c.id for c in held.contacts.all()]
        dialed = held.attempts.begin(ids[0], agent_id="u-1")  # the holder dials
        assert held.attempts.get(dialed).state is AttemptState.INTENT
        # Another replica takes the campaign over: a new owner at the next epoch.
        sql("UPDATE leases SET owner = ?, epoch = epoch + 1, expires_at = ? WHERE name = ?",
            ("replica-b", 1_000_060.0, "campaign:c1"))  # fmt: skip
        before = _counts(sql, "c1")
        with pytest.raises(JournalFencedError, match="no longer holds campaign c1"):
            held.attempts.begin(ids[1], agent_id="u-1")
        assert _counts(sql, "c1") == before, "a fenced attempt writes nothing"
        assert isinstance(JournalFencedError("x"), JournalError)
    # The same owner and epoch, but the lease ran out: fenced too.
    sql("UPDATE leases SET owner = 'replica-a', epoch = 1, expires_at = ?", (1_000_000.0,))
    with Journal.open_in(db, "c1", fence=fence) as late:
        with pytest.raises(JournalFencedError):
            late.attempts.begin(ids[1], agent_id="u-1")
        now[0] = 999_999.0
        late.attempts.begin(ids[1], agent_id="u-1")  # still held at that instant
    # Without a fence (the CLI, a read for a report) nothing is checked.
    with Journal.open_in(db, "c1") as free:
        free.attempts.begin(ids[2], agent_id="u-1")


def test_create_open_exists_and_drop(
    shared: tuple[JournalDatabase, Callable[..., list[tuple[Any, ...]]]],
) -> None:
    db, sql = shared
    assert not Journal.exists_in(db, "c1")
    with pytest.raises(JournalError, match="No campaign c1"):
        Journal.open_in(db, "c1")
    journal = Journal.create_in(db, "c1", name="one", csv_fingerprint="f")
    journal.contacts.add(contacts(2))
    first_ids = [c.id for c in journal.contacts.all()]
    journal.close()
    assert Journal.exists_in(db, "c1")
    with pytest.raises(JournalError, match="already exists"):
        Journal.create_in(db, "c1", name="again", csv_fingerprint="f")
    with pytest.raises(JournalError, match="belongs to campaign 'one'"):
        Journal.open_in(db, "c1", expect_name="two")
    Journal.drop_in(db, "c1")
    assert not Journal.exists_in(db, "c1")
    for table in ("campaign_meta", "campaign_contacts", "campaign_events"):
        assert sql(f"SELECT COUNT(*) FROM {table}")[0][0] == 0  # noqa: S608
    with Journal.create_in(db, "c1", name="one", csv_fingerprint="f") as again:
        again.contacts.add(contacts(2))
        assert min(c.id for c in again.contacts.all()) > max(first_ids), "ids only grow"


def test_a_newer_schema_in_the_database_is_refused(
    shared: tuple[JournalDatabase, Callable[..., list[tuple[Any, ...]]]],
) -> None:
    db, sql = shared
    Journal.create_in(db, "c1", name="one", csv_fingerprint="f").close()
    sql("UPDATE campaign_schema SET version = 99")
    for act in (db.ensure_schema, lambda: Journal.open_in(db, "c1")):
        with pytest.raises(JournalError, match="newer gcdial"):
            act()


def test_replicas_ensuring_the_schema_at_once(pg_url: str) -> None:
    db = JournalDatabase.postgres(pg_url)
    failures: list[BaseException] = []

    def ensure() -> None:
        try:
            db.ensure_schema()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=ensure) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert not Journal.exists_in(db, "x")


def test_an_unreachable_postgres_is_a_journal_error_without_the_password() -> None:
    db = JournalDatabase.postgres("postgresql://u:s3cret@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(JournalError) as info:
        db.ensure_schema()
    assert "s3cret" not in str(info.value)
    assert "s3cret" not in repr(db)


def test_a_database_without_the_campaign_tables_is_a_clear_error(tmp_path: Path) -> None:
    db = JournalDatabase.sqlite(tmp_path / "serve.sqlite3")
    with pytest.raises(JournalError, match="no campaign tables yet"):
        Journal.create_in(db, "c1", name="one")
    db.ensure_schema()
    Journal.create_in(db, "c1", name="one").close()


def test_a_takeover_in_progress_makes_begin_attempt_wait_then_refuse(pg_url: str) -> None:
    """PostgreSQL: the lease row is read FOR SHARE, so an attempt racing a takeover waits for it
    and then sees the new owner: it is refused, never journaled (and so never dialed)."""
    db = JournalDatabase.postgres(pg_url)
    db.ensure_schema()
    sql = _pg_sql(pg_url)
    sql(
        "CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, "
        "expires_at REAL NOT NULL, epoch INTEGER NOT NULL DEFAULT 0)"
    )
    sql("INSERT INTO leases VALUES ('campaign:c1', 'replica-a', 2e9, 1)")
    with Journal.create_in(db, "c1", name="c1") as journal:
        journal.contacts.add(contacts(1))
    fence = Fence(lease="campaign:c1", owner="replica-a", epoch=1, now=lambda: 1e9)
    outcome: list[object] = []
    with Journal.open_in(db, "c1", fence=fence) as held:
        contact_id = next(iter(held.contacts.all())).id

        def dial() -> None:
            try:
                outcome.append(held.attempts.begin(contact_id, agent_id="u-1"))
            except JournalError as exc:
                outcome.append(exc)

        with psycopg.connect(pg_url) as taker:  # a transaction: the takeover under way
            taker.execute("SELECT 1 FROM leases WHERE name = 'campaign:c1' FOR UPDATE")
            thread = threading.Thread(target=dial)
            thread.start()
            thread.join(0.5)
            assert thread.is_alive(), "the attempt waits for the takeover to commit"
            taker.execute("UPDATE leases SET owner = 'replica-b', epoch = 2")
            taker.commit()
        thread.join(30)
        assert len(outcome) == 1
        assert isinstance(outcome[0], JournalFencedError)
        assert held.attempts.all() == []
        assert held.contacts.get(contact_id).status is ContactStatus.PENDING
