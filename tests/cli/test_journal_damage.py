"""A journal damaged from the inside, as a user meets it: the installed script in a subprocess.

Two defects of issue 16. A value that gcdial never writes (a hand edit, a damaged page) inside an
otherwise intact journal must be a clear error, exit 2, naming the file, table, row and column,
from every command; never "internal error". And a kill in the first instants of a journal (a
rollback journal left hot beside it) must not leave the campaign unusable: the next status,
report and resume work.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gcdial.campaign.journal import Journal
from gcdial.campaign.journalhome import build
from gcdial.emulator import EmulatorConfig, EmulatorServer
from old_journals import back_to_schema

from .helpers import Result, assert_clean, emulator_env, secret_forms

DOMAIN = "damage.example.com"
AGENT = f"agent001@{DOMAIN}"
ALL_DAY = ["--window", "00:00-24:00"]
NUMBERS = ["+14155550301", "+14155550302", "+14155550303"]

# Every column of every table that holds a typed value (a time, a number, a choice, JSON):
# (table, column, which rows) -> each set to a value gcdial never writes.
TYPED_COLUMNS = [
    ("campaign_contacts", "line", ""),
    ("campaign_contacts", "attributes", ""),
    ("campaign_contacts", "status", ""),
    ("campaign_contacts", "attempts", ""),
    ("campaign_contacts", "next_at", ""),
    ("campaign_contacts", "updated_at", ""),
    ("campaign_contacts", "tz", ""),
    ("campaign_attempts", "contact_id", ""),
    ("campaign_attempts", "number", ""),
    ("campaign_attempts", "state", ""),
    ("campaign_attempts", "created_at", ""),
    ("campaign_attempts", "accepted_at", ""),
    ("campaign_attempts", "ended_at", ""),
    ("campaign_attempts", "talk_s", ""),
    ("campaign_attempts", "sent_after", ""),
    ("campaign_attempts", "match_after", ""),
    ("campaign_attempts", "wrapup_at", ""),
    ("campaign_attempts", "wrapup_action", ""),
    ("campaign_events", "at", ""),
    ("campaign_events", "contact_id", ""),
    ("campaign_meta", "value", "settings"),
    ("campaign_meta", "value", "attribute_columns"),
    ("campaign_meta", "value", "created_at"),
    ("campaign_meta", "value", "contacts_loaded"),
]


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    path = tmp_path_factory.mktemp("org") / "org.json"
    path.write_text(
        json.dumps(
            {
                "clients": [{"id": "dmg", "secret": "dmg-secret", "grant": "client_credentials"}],
                "generate_agents": {"count": 1, "email_domain": DOMAIN},
            }
        )
    )
    with EmulatorServer(EmulatorConfig(speed=400.0, admin=True, fixture=path)) as server:
        yield server


@pytest.fixture
def gc(run_gcdial: Callable[..., Result], org: EmulatorServer) -> Callable[..., Result]:
    org.reset()
    org.set_speed(400.0)

    def run(*args: str, timeout: float = 60) -> Result:
        result = run_gcdial(
            *args, env=emulator_env(org), secrets=secret_forms(org), timeout=timeout
        )
        assert_clean(result, secret_forms(org))
        return result

    return run


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, org: EmulatorServer) -> Path:
    """A journal of a real campaign run to its end: contacts, attempts, events, a skipped row."""
    folder = tmp_path_factory.mktemp("finished")
    (folder / "home").mkdir()
    (folder / "c.csv").write_text(
        "phone,name,tz\n" + "".join(f"{n},Ann,America/New_York\n" for n in NUMBERS) + "123,Bad,\n"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder / "home"),
        "NO_COLOR": "1",
        **emulator_env(org),
    }
    gcdial = Path(sys.executable).parent / "gcdial"
    args = [str(gcdial), "campaign", "run", "c.csv", "--agents", AGENT, *ALL_DAY]
    done = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return folder


def _damage(journal: Path, table: str, column: str, key: str) -> None:
    with sqlite3.connect(journal) as conn:
        where = " WHERE key = ?" if key else ""
        params = (key,) if key else ()
        changed = conn.execute(
            f"UPDATE {table} SET {column} = 'garbage' "  # noqa: S608 - the test's own names
            f"WHERE rowid = (SELECT MAX(rowid) FROM {table}{where})",
            params,
        ).rowcount
    conn.close()
    assert changed == 1, f"no {table} row to damage"


COMMANDS = (["status"], ["report"], ["resume"], ["review"])
# The values the issue found giving "internal error": every command is tried on these.
REPORTED = {("campaign_contacts", "next_at"), ("campaign_contacts", "status"),
            ("campaign_attempts", "created_at"), ("campaign_meta", "value")}  # fmt: skip


@pytest.mark.parametrize(("table", "column", "key"), TYPED_COLUMNS)
def test_a_bad_value_in_any_typed_column_is_exit_2_naming_file_table_row_and_column(
    gc: Callable[..., Result], work_dir: Path, finished: Path, table: str, column: str, key: str
) -> None:
    shutil.copy(finished / "c.csv", work_dir / "c.csv")
    shutil.copy(finished / "c.db", work_dir / "c.db")
    _damage(work_dir / "c.db", table, column, key)

    # Every value is read through one boundary, whichever command reads it: each column is
    # tried with one command in turn (all four for the ones reported), a CLI process each.
    turn = TYPED_COLUMNS.index((table, column, key)) % len(COMMANDS)
    for command in COMMANDS if (table, column) in REPORTED else (COMMANDS[turn],):
        result = gc("campaign", *command, "c.db")

        assert result.code == 2, (command, result)
        assert "internal error" not in result.err
        assert "c.db" in result.err, (command, result.err)
        assert f"table {table}, row " in result.err, (command, result.err)
        assert f"column {column} is 'garbage'" in result.err, (command, result.err)
        assert "backup" in result.err


def _leave_hot_rollback_journal(path: Path) -> None:
    """What a kill -9 in the first instants of a journal left (before journals were made in WAL
    mode): the complete file in rollback mode, a hot ``-journal`` beside it, and the lock file.
    A child process begins writing, spills pages to the file, and is killed mid-transaction."""
    child = """
import os, signal, sqlite3, sys
from pathlib import Path
from gcdial.campaign.journal import _FileLock
path = Path(sys.argv[1])
_FileLock(path).acquire()
conn = sqlite3.connect(path, isolation_level=None)
conn.execute("PRAGMA cache_size = 1")
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE campaign_meta SET value = value || ''")
conn.execute("UPDATE campaign_contacts SET detail = hex(randomblob(3000))")
os.kill(os.getpid(), signal.SIGKILL)
"""
    killed = subprocess.run([sys.executable, "-c", child, str(path)], check=False)
    assert killed.returncode == -signal.SIGKILL
    assert path.with_name(path.name + "-journal").stat().st_size > 0


def test_a_kill_that_leaves_a_hot_rollback_journal_does_not_make_the_journal_unusable(
    gc: Callable[..., Result], work_dir: Path, org: EmulatorServer
) -> None:
    (work_dir / "c.csv").write_text("phone\n" + "\n".join(NUMBERS) + "\n")
    journal = work_dir / "c.db"
    first = gc("campaign", "run", "c.csv", "--agents", AGENT, *ALL_DAY)
    assert first.code == 0, first
    with sqlite3.connect(journal) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")  # as an older gcdial created it
    conn.close()
    _leave_hot_rollback_journal(journal)

    status = gc("campaign", "status", "c.db")
    report = gc("campaign", "report", "c.db")
    resumed = gc("campaign", "run", "c.csv", "--agents", AGENT, *ALL_DAY)
    again = gc("campaign", "resume", "c.db")

    assert status.code == 0, status
    assert "Contacts: 3" in status.out
    assert report.code == 0, report
    assert resumed.code == 0, resumed
    assert again.code == 0, again
    assert sorted(c["phoneNumber"] for c in org.calls_created()) == NUMBERS, "each dialed once"
    with Journal.open(journal, read_only=True) as opened:
        details = [c.detail or "" for c in opened.contacts.all()]
    assert all(len(d) < 1000 for d in details), "the killed writer's changes were rolled back"
    assert not journal.with_name("c.db-journal").exists()


def test_a_new_journal_is_renamed_into_place_already_in_wal_mode(tmp_path: Path) -> None:
    """The switch to WAL on the first open, whose rollback journal a kill left hot, is gone: the
    file is complete and in WAL mode the moment it appears under its name."""
    path = tmp_path / "x.db"
    build(path, {"name": "x"})
    with path.open("rb") as handle:
        header = handle.read(20)

    assert header[18:20] == b"\x02\x02", "WAL mode (file format 2) in the header"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.db"]


def test_a_damaged_journal_whose_migration_fails_is_left_as_it_was(
    gc: Callable[..., Result], work_dir: Path, finished: Path
) -> None:
    shutil.copy(finished / "c.csv", work_dir / "c.csv")
    journal = work_dir / "c.db"
    shutil.copy(finished / "c.db", journal)
    # Back to schema 2 (its first step, 2 -> 3, would succeed), damaged so that the step to
    # schema 4 fails: a table of schema 4 is already there.
    back_to_schema(journal, 2)
    with sqlite3.connect(journal) as conn:
        conn.execute("CREATE TABLE dnc_numbers (phone TEXT)")
    conn.close()
    before = journal.read_bytes()

    resumed = gc("campaign", "resume", "c.db")

    assert resumed.code == 2, resumed
    assert "c.db" in resumed.err
    assert "cannot be brought to schema" in resumed.err
    assert "internal error" not in resumed.err
    assert journal.read_bytes() == before, "the original is left as it was"
    assert sorted(p.name for p in work_dir.iterdir()) == ["c.csv", "c.db"]
