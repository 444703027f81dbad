"""``gcdial campaign`` as a user runs it: the installed script in a subprocess, against an emulator
in this process. Includes the crash test: kill -9 at random moments, resume, repeat; then count
every call the emulator placed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gcdial.campaign.journal import AttemptState, ContactStatus, Journal
from gcdial.emulator import EmulatorConfig, EmulatorServer

from .helpers import GCDIAL, Result, assert_clean, emulator_env, secret_forms

DOMAIN = "cli.example.com"
SPEED = 400.0
ALL_DAY = ["--window", "00:00-24:00"]


def agent(n: int) -> str:
    return f"agent{n:03d}@{DOMAIN}"


def number(area: str, last: int, exchange: int = 1) -> str:
    return f"+1{area}555{exchange:02d}{last:02d}"


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """A long-lived emulator: six agents with stations, dave without one."""
    path = tmp_path_factory.mktemp("org") / "org.json"
    path.write_text(
        json.dumps(
            {
                "clients": [
                    {"id": "cli-client", "secret": "cli-secret", "grant": "client_credentials"}
                ],
                "users": [
                    {
                        "id": "44444444-4444-4444-8444-444444444444",
                        "name": "Dave Diaz",
                        "email": "dave@example.com",
                        "station": None,
                    }
                ],
                "generate_agents": {"count": 6, "email_domain": DOMAIN},
            }
        )
    )
    # Conversation details show a call 10 simulated seconds after it starts (Genesys' own delay is
    # UNCONFIRMED; the emulator's default is 90 s): the crash test's settle time stays short.
    config = EmulatorConfig(speed=SPEED, admin=True, fixture=path, analytics_ingestion_delay_s=10.0)
    with EmulatorServer(config) as server:
        yield server


@pytest.fixture
def emu(org: EmulatorServer) -> EmulatorServer:
    org.reset()
    org.set_speed(SPEED)
    return org


@pytest.fixture
def gc(
    run_gcdial: Callable[..., Result], emu: EmulatorServer, work_dir: Path
) -> Callable[..., Result]:
    """Run gcdial (in ``work_dir``) against the org emulator."""

    def run(*args: str, timeout: float = 45) -> Result:
        return run_gcdial(*args, env=emulator_env(emu), secrets=secret_forms(emu), timeout=timeout)

    return run


def write_list(path: Path, phones: list[str], **columns: list[str]) -> Path:
    names = ["phone", *columns]
    lines = [",".join(names)]
    for i, phone in enumerate(phones):
        lines.append(",".join([phone, *(values[i] for values in columns.values())]))
    path.write_text("\n".join(lines) + "\n")
    return path


def created(emu: EmulatorServer) -> Counter[str]:
    return Counter(c["phoneNumber"] for c in emu.calls_created())


def request_total(emu: EmulatorServer) -> int:
    return int(emu.request_counts()["total"])


def test_a_campaign_runs_to_the_end_with_json_and_exit_0(
    gc: Callable[..., Result], emu: EmulatorServer, work_dir: Path
) -> None:
    phones = [number("415", n) for n in range(6)]
    write_list(work_dir / "contacts.csv", phones)

    result = gc(
        "--json", "campaign", "run", "contacts.csv", "--agents", f"{agent(1)},{agent(2)}", *ALL_DAY
    )

    assert result.code == 0, result.err
    lines = result.json_lines()
    summary = lines[-1]
    assert summary["event"] == "summary"
    assert summary["reason"] == "finished"
    assert summary["by_outcome"] == {"answered": 6}
    assert summary["calls_placed"] == 6
    assert {e["event"] for e in lines} >= {"placed", "outcome", "summary"}
    assert (work_dir / "contacts.db").is_file()
    assert created(emu) == dict.fromkeys(phones, 1)

    status = gc("campaign", "status", "contacts.db", "--json")
    assert status.code == 0
    assert status.json()["finished"] is True
    report = gc("campaign", "report", "contacts.db", "--format", "json")
    rows = json.loads(report.out)
    assert [r["phone"] for r in rows] == phones
    assert {r["outcome"] for r in rows} == {"answered"}
    assert all(r["conversation_id"] for r in rows)
    to_file = gc("campaign", "report", "contacts.db", "--format", "csv", "--output", "out.csv")
    assert to_file.code == 0
    assert (work_dir / "out.csv").read_text().splitlines()[0].startswith("line,phone,")

    again = gc("campaign", "run", "contacts.csv", "--agents", agent(1), *ALL_DAY)
    assert again.code == 0
    assert "finished" in again.out
    assert created(emu) == dict.fromkeys(phones, 1), "a finished campaign dials nobody again"
    # One file per campaign, as the README says: no -wal, -shm or .lock left by the run or by
    # the read-only status and report.
    assert sorted(p.name for p in work_dir.iterdir()) == ["contacts.csv", "contacts.db", "out.csv"]


def test_dry_run_sends_nothing_and_says_why(
    gc: Callable[..., Result], emu: EmulatorServer, work_dir: Path
) -> None:
    hour = datetime.now(UTC).hour
    window = f"{(hour + 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00"
    phones = [number("415", 1), number("415", 2), number("212", 3), number("415", 4), "12"]
    zones = ["Etc/GMT-2", "UTC", "", "", ""]  # UTC+2 is inside the window, UTC is not
    agents = ["", "", "", "bob@elsewhere.example.com", ""]
    write_list(work_dir / "contacts.csv", phones, timezone=zones, agent=agents)
    (work_dir / "dnc.txt").write_text("212-555-0103\n")
    before = request_total(emu)

    result = gc(
        "--json", "campaign", "run", "contacts.csv", "--agents", agent(1),
        "--dnc", "dnc.txt", "--window", window, "--dry-run",
    )  # fmt: skip

    assert result.code == 0, result.err
    lines = result.json_lines()
    by_line = {e["line"]: e for e in lines if e["event"] == "plan"}
    assert by_line[2]["action"] == "dial"
    assert by_line[3]["action"] == "defer"
    assert by_line[3]["at"] is not None
    assert by_line[4]["action"] == "skip"
    assert by_line[4]["outcome"] == "do_not_call"
    assert by_line[5]["action"] == "wait_agent"
    assert by_line[6]["action"] == "refused"
    assert lines[-1]["by_action"] == {
        "defer": 1,
        "dial": 1,
        "refused": 1,
        "skip": 1,
        "wait_agent": 1,
    }
    assert request_total(emu) == before, "a dry run sends nothing, not even a token request"
    assert not (work_dir / "contacts.db").exists()

    human = gc(
        "campaign", "run", "contacts.csv", "--agents", agent(1), "--window", window, "--dry-run"
    )
    assert "line 3 +14155550102: defer until" in human.out
    assert "nothing was sent" in human.err


def test_a_window_given_at_resume_applies_to_contacts_the_last_window_deferred(
    gc: Callable[..., Result], emu: EmulatorServer, work_dir: Path
) -> None:
    """A night run defers its contacts to the window's opening; run again with --window
    00:00-24:00, the dry run plans them for now and the run dials them now: the window given is
    the one applied, not the one the last run stored."""
    hour = datetime.now(UTC).hour
    closed = f"{(hour + 3) % 24:02d}:00-{(hour + 3) % 24 + 1:02d}:00"  # does not hold now
    write_list(work_dir / "c.csv", [number("415", 1)], timezone=["UTC"])
    night = gc("campaign", "run", "c.csv", "--agents", agent(1), "--window", closed,
               "--until-deferred")  # fmt: skip
    assert night.code == 0, night.err
    assert created(emu) == Counter()

    plan = gc("campaign", "run", "c.csv", "--agents", agent(1), *ALL_DAY, "--dry-run")
    assert "line 2 +14155550101: dial: inside the calling window" in plan.out, plan.out
    run = gc("campaign", "run", "c.csv", "--agents", agent(1), *ALL_DAY)
    assert run.code == 0, run.err
    assert created(emu) == {number("415", 1): 1}


def test_bad_input_is_a_clear_error_never_a_traceback(
    gc: Callable[..., Result], emu: EmulatorServer, work_dir: Path
) -> None:
    (work_dir / "nophone.csv").write_text("name,email\nAnn,a@x.com\n")
    missing = gc("campaign", "run", "nophone.csv", "--agents", agent(1))
    assert missing.code == 2
    assert "no phone column" in missing.err
    assert "--phone-column" in missing.err

    write_list(work_dir / "a.csv", [number("415", 1)])
    no_agents = gc("campaign", "run", "a.csv")
    assert no_agents.code == 2
    assert "--agents" in no_agents.err

    nobody = gc("campaign", "run", "a.csv", "--agents", "dave@example.com", *ALL_DAY)
    assert nobody.code == 7
    assert "No agent can take calls" in nobody.err
    assert "station" in nobody.err

    (work_dir / "junk.txt").write_text("+14155550199\nnot a number at all\n")
    junk = gc("campaign", "run", "a.csv", "--agents", agent(1), "--dnc", "junk.txt", "--strict")
    assert junk.code == 2
    assert "junk.txt:2" in junk.err

    bad_window = gc("campaign", "run", "a.csv", "--agents", agent(1), "--window", "9-5")
    assert bad_window.code == 2
    assert "HH:MM-HH:MM" in bad_window.err

    assert gc("campaign", "run", "a.csv", "--agents", agent(1), *ALL_DAY).code == 0
    write_list(work_dir / "b.csv", [number("415", 2)])
    other = gc("campaign", "run", "b.csv", "--journal", "a.db", "--agents", agent(1))
    assert other.code == 2
    assert "differs" in other.err

    with sqlite3.connect(work_dir / "a.db") as conn:
        conn.execute("PRAGMA user_version = 99")
    newer = gc("campaign", "status", "a.db")
    assert newer.code == 2
    assert "newer gcdial" in newer.err
    resumed = gc("campaign", "resume", "a.db")
    assert resumed.code == 2

    not_a_journal = gc("campaign", "status", "a.csv")
    assert not_a_journal.code == 2
    assert "not a gcdial journal" in not_a_journal.err
    assert created(emu) == {number("415", 1): 1}


def test_a_second_process_is_refused_while_one_runs(
    gc: Callable[..., Result], emu: EmulatorServer, work_dir: Path
) -> None:
    write_list(work_dir / "a.csv", [number("415", 1)])
    assert gc("campaign", "run", "a.csv", "--agents", agent(1), *ALL_DAY).code == 0
    holder = Journal.open(work_dir / "a.db")
    try:
        second = gc("campaign", "resume", "a.db", "--agents", agent(1))
    finally:
        holder.close()
    assert second.code == 2
    assert "in use by another gcdial process" in second.err
    assert f"pid {os.getpid()}" in second.err
    # The holder's clean exit removed its lock file; the lock still works after that.
    assert not (work_dir / "a.db.lock").exists()
    with Journal.open(work_dir / "a.db"):
        assert (work_dir / "a.db.lock").exists()
        assert gc("campaign", "resume", "a.db", "--agents", agent(1)).code == 2


def _spawn(
    emu: EmulatorServer,
    base_env: dict[str, str],
    cwd: Path,
    *args: str,
    extra: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(GCDIAL), *args],
        env={**base_env, **emulator_env(emu), **(extra or {})},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigterm_stops_gracefully_following_calls_in_progress(
    emu: EmulatorServer, base_env: dict[str, str], work_dir: Path
) -> None:
    emu.set_speed(20)  # calls last about a second: SIGTERM lands while they are in progress
    phones = [number("415", n) for n in range(10)]
    write_list(work_dir / "c.csv", phones)
    proc = _spawn(
        emu,
        base_env,
        work_dir,
        "campaign",
        "run",
        "c.csv",
        "--agents",
        f"{agent(1)},{agent(2)}",
        *ALL_DAY,
    )
    deadline = time.monotonic() + 20
    while not emu.calls_created() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)

    assert proc.returncode == 130, err
    assert "Traceback" not in err
    with Journal.open(work_dir / "c.db", read_only=True) as journal:
        assert journal.attempts.in_flight() == [], "calls in progress were followed to their end"
        attempts = journal.attempts.all()
        pending = list(journal.contacts.all(status=ContactStatus.PENDING))
    assert attempts
    assert all(a.state is AttemptState.ENDED for a in attempts)
    assert len(pending) == len(phones) - len(attempts)


def _spawn_in_group(
    emu: EmulatorServer, base_env: dict[str, str], cwd: Path, *args: str
) -> subprocess.Popen[str]:
    """gcdial as the leader of its own process group, as under `timeout` or a terminal."""
    return subprocess.Popen(
        [str(GCDIAL), *args],
        env={**base_env, **emulator_env(emu)},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_a_call(emu: EmulatorServer) -> None:
    deadline = time.monotonic() + 20
    while not emu.calls_created() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_one_sigint_to_the_process_and_its_group_is_one_stop_request(
    emu: EmulatorServer, base_env: dict[str, str], work_dir: Path
) -> None:
    """`timeout -s INT N gcdial ...` signals the child and then its process group: one event,
    two signals. It must stop gracefully, following the calls in progress, not leave at once."""
    emu.set_speed(10)  # calls last over a second: the signals land while they are in progress
    phones = [number("415", n) for n in range(6)]
    write_list(work_dir / "c.csv", phones)
    agents = f"{agent(1)},{agent(2)}"
    proc = _spawn_in_group(
        emu, base_env, work_dir, "campaign", "run", "c.csv", "--agents", agents, *ALL_DAY
    )
    _wait_for_a_call(emu)
    proc.send_signal(signal.SIGINT)  # what `timeout` does: the child...
    os.killpg(proc.pid, signal.SIGINT)  # ... then the whole group
    _, err = proc.communicate(timeout=30)

    assert proc.returncode == 130, err
    assert "following the calls in progress" in err
    assert "leaving now" not in err
    with Journal.open(work_dir / "c.db", read_only=True) as journal:
        assert journal.attempts.in_flight() == [], "calls in progress were followed to their end"
        assert all(a.state is AttemptState.ENDED for a in journal.attempts.all())


def test_a_second_stop_request_leaves_at_once_and_says_so(
    emu: EmulatorServer, base_env: dict[str, str], work_dir: Path
) -> None:
    emu.set_speed(2)  # calls last about 8 s: both requests land while they are in progress
    write_list(work_dir / "c.csv", [number("415", n) for n in range(4)])
    agents = f"{agent(1)},{agent(2)}"
    proc = _spawn_in_group(
        emu, base_env, work_dir, "campaign", "run", "c.csv", "--agents", agents, *ALL_DAY
    )
    _wait_for_a_call(emu)
    proc.send_signal(signal.SIGINT)
    time.sleep(1.5)  # a person pressing Ctrl-C again: well apart from the first
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)

    assert proc.returncode == 130, err
    assert "leaving now (second stop request)" in err
    assert "are no longer followed; `gcdial campaign resume" in err


def test_kill_9_at_random_moments_then_resume_rings_nobody_twice_and_loses_nobody(
    emu: EmulatorServer, base_env: dict[str, str], work_dir: Path
) -> None:
    """The crash test: up to 25 rounds of kill -9 at a random moment, each followed by a resume.

    Slow answers make the dialing core resolve ambiguous creates (live evidence, conversation
    details), so kills also land during resolution, and resumes resolve what they left.
    """
    # Calls last about a second: kills land in every phase of a call, and the list takes more
    # rounds than the ten kills asked for below, however fast the machine starts a process.
    emu.set_speed(25)
    rng = random.Random(20260302)
    # Slow answers widen the gap between the committed intent and the recorded answer, so that
    # some kills land there: on resume those contacts must be set aside, never re-dialed.
    emu.add_fault(route="create_call", mode="hang_after_create", seconds=0.4, probability=0.25)
    emu.add_fault(route="create_call", mode="latency", seconds=0.3, probability=0.2)
    lasts = [0, 3, 8, 55, 58, 63, 66, 71, 84, 91, 97, 1, 2, 4, 5, 6, 9, 12, 20, 30]
    phones = [number(area, last) for area in ("415", "212", "312") for last in lasts]
    write_list(work_dir / "c.csv", phones)
    max_attempts = 2
    args = (
        "campaign", "run", "c.csv", "--agents", ",".join(agent(n) for n in range(1, 5)),
        *ALL_DAY, "--retry-no-answer", "0s", "--retry-busy", "0s",
        "--max-attempts", str(max_attempts), "--json",
    )  # fmt: skip
    # Longer than the emulator's analytics ingestion delay at this speed (10 s / 25).
    settle = {"GCDIAL_ANALYTICS_SETTLE_S": "1"}
    kills = 0
    for _ in range(25):
        proc = _spawn(emu, base_env, work_dir, *args, extra=settle)
        try:
            proc.wait(timeout=rng.uniform(0.4, 1.5))
        except subprocess.TimeoutExpired:
            proc.kill()
            kills += 1
        _, err = proc.communicate(timeout=10)
        assert "Traceback" not in err
        if proc.returncode in (0, 5):
            break
    final = _spawn(emu, base_env, work_dir, *args, extra=settle)
    _, err = final.communicate(timeout=40)
    assert final.returncode in (0, 5), err
    assert kills >= 10, "the campaign finished before it could be killed often enough"

    calls = created(emu)
    with Journal.open(work_dir / "c.db", read_only=True) as journal:
        contacts = {c.phone: c for c in journal.contacts.all()}
        attempts_of: dict[str, list[Any]] = {p: [] for p in phones}
        for attempt in journal.attempts.all():
            attempts_of[contacts_by_id(contacts)[attempt.contact_id]].append(attempt)
        assert journal.attempts.in_flight() == []
    assert sorted(contacts) == sorted(phones), "every contact is in the journal"
    for phone in phones:
        contact = contacts[phone]
        assert contact.status in (ContactStatus.DONE, ContactStatus.UNKNOWN), (phone, contact)
        mine = attempts_of[phone]
        last = int(phone[-2:])
        allowance = max_attempts if 50 <= last <= 69 else (4 if last >= 90 else 1)
        assert calls[phone] <= allowance, f"{phone} rang {calls[phone]} times"
        may_have_rung = [a for a in mine if a.state is not AttemptState.NOT_SENT]
        surely_rang = [a for a in mine if a.conversation_id is not None]
        assert len(surely_rang) <= calls[phone] <= len(may_have_rung), (phone, mine)
        unknown = [a for a in mine if a.state is AttemptState.UNKNOWN]
        if unknown:
            assert mine[-1].state is AttemptState.UNKNOWN, "nothing is dialed after an unknown"
            assert contact.status is ContactStatus.UNKNOWN
    report = subprocess.run(
        [str(GCDIAL), "campaign", "report", "c.db", "--format", "json"],
        env=base_env, cwd=work_dir, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert_clean(Result(report.returncode, report.stdout, report.stderr), [])
    assert sorted(r["phone"] for r in json.loads(report.stdout)) == sorted(phones)


def contacts_by_id(contacts: dict[str, Any]) -> dict[int, str]:
    return {c.id: phone for phone, c in contacts.items()}
