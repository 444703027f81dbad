"""Kill -9 during after-call work, then resume: no wrap-up is lost and nobody is dialed twice.

``gcdial campaign run`` is killed while every agent is wrapping up (the calls are over, their
wrap-ups not yet given); ``gcdial campaign resume`` follows the calls left in flight and records
each wrap-up, whether it came while nobody was listening or after the resume.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from gcdial.campaign.journal import AttemptState, Journal
from gcdial.emulator import EmulatorServer

from .helpers import GCDIAL, Result, emulator_env, secret_forms

SALES = "9ee00001-0000-4000-8000-000000000001"
AGENTS = [f"agent{n:03d}@acw.example.com" for n in range(1, 5)]


def org(path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "clients": [
                    {"id": "k-client", "secret": "k-secret", "grant": "client_credentials"}
                ],
                "generate_agents": {"count": 4, "email_domain": "acw.example.com"},
                "wrapup_codes": [
                    {"id": "c0de0001-0000-4000-8000-000000000001", "name": "Sale"},
                    {"id": "c0de0004-0000-4000-8000-000000000004", "name": "Do not call"},
                ],
                "queues": [{"id": SALES, "name": "Sales", "wrapup_codes": ["Sale", "Do not call"]}],
                # A long after-call time (in simulated seconds): the run is killed during it.
                "wrapups": [
                    {"match": "*4??", "code": "Do not call", "after_s": 900},
                    {"match": "*", "code": "Sale", "notes": "order", "after_s": 900},
                ],
            }
        )
    )
    return path


def in_acw(journal_path: Path, emulator: EmulatorServer, calls: int) -> bool:
    """Every call accepted (journaled), over, and its agent still wrapping up."""
    if not journal_path.exists():
        return False
    try:
        with Journal.open(journal_path, read_only=True) as journal:
            accepted = [a for a in journal.attempts.all() if a.state is AttemptState.ACCEPTED]
    except Exception:  # the journal is being created
        return False
    return len(accepted) == calls and emulator.wrapups()["pending"] == calls


def test_kill_9_in_after_call_work_then_resume_loses_no_wrapup(
    make_emulator: Callable[..., EmulatorServer],
    run_gcdial: Callable[..., Result],
    base_env: dict[str, str],
    work_dir: Path,
    tmp_path: Path,
) -> None:
    emulator = make_emulator(fixture=org(tmp_path / "org.json"), speed=50)
    phones = ["+14155550105", "+14155550106", "+14155550407", "+14155550108"]
    (work_dir / "c.csv").write_text("phone\n" + "\n".join(phones) + "\n")
    (work_dir / "dnc.txt").write_text("")
    env = {**base_env, **emulator_env(emulator)}
    (work_dir / "rules.toml").write_text('[codes]\n"Do not call" = "dnc"\n')
    command = [
        str(GCDIAL), "--json", "campaign", "run", "c.csv", "--agents", ",".join(AGENTS),
        "--queue", SALES, "--window", "00:00-24:00", "--dnc", "dnc.txt",
        "--wrapup-rules", "rules.toml",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command,
        env=env,
        cwd=work_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    journal_path = work_dir / "c.db"
    try:
        for _ in range(400):
            if in_acw(journal_path, emulator, len(phones)) or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before after-call work"
        assert in_acw(journal_path, emulator, len(phones))
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert emulator.wrapups()["total"] == 0  # nothing was wrapped up before the kill

    emulator.set_speed(400)  # the after-call work ends during the resume
    resumed = run_gcdial(
        "--json", "campaign", "resume", "c.db",
        env=emulator_env(emulator), secrets=secret_forms(emulator), timeout=60,
    )  # fmt: skip
    assert resumed.code == 0, resumed.err

    ledger = emulator.wrapups()
    assert ledger["total"] == len(phones)
    assert ledger["pending"] == 0
    with Journal.open(journal_path, read_only=True) as journal:
        attempts = journal.attempts.all()
        dnc = journal.attempts.dnc_numbers()
        counts, missing = journal.attempts.wrapup_counts()
    assert len(attempts) == len(phones)  # nobody dialed twice
    assert [c["phoneNumber"] for c in emulator.calls_created()].count(phones[0]) == 1
    assert all(a.state is AttemptState.ENDED and a.wrapup is not None for a in attempts)
    assert counts == ledger["byCode"] == {"Sale": 3, "Do not call": 1}
    assert missing == 0
    assert dnc == {"+14155550407"}
    assert "+14155550407" in (work_dir / "dnc.txt").read_text()
