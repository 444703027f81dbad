"""The campaign_store benchmark's child script (bench/scripts/campaign_journal_run.py) runs the
same campaign with its journal where it is told: the CLI's file, the service's SQLite store, or
PostgreSQL, each dialing every contact once and journaling there (no timing asserted)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from bench.campaign import _agents, _emulator, _env, _fixture, _write_list
from bench.campaign_store import SCRIPT

CONTACTS = 12


@pytest.mark.timeout(180)
def test_each_kind_dials_every_contact_once_and_journals_where_told(
    tmp_path: Path, pg_url: str
) -> None:
    csv = _write_list(tmp_path / "calls.csv", CONTACTS, answered_only=True)
    numbers = {line.split(",")[0] for line in csv.read_text().splitlines()[1:]}
    targets = {
        "file": str(tmp_path / "calls.db"),
        "sqlite": str(tmp_path / "serve.sqlite3"),
        "postgres": pg_url,
    }
    with _emulator(_fixture(tmp_path / "org.json"), limit=1_000_000, window_s=60) as emu:
        for kind, target in targets.items():
            emu.reset()
            done = subprocess.run(
                [sys.executable, str(SCRIPT), kind, target, str(csv), _agents()],
                capture_output=True,
                text=True,
                env={**_env(emu), "XDG_CONFIG_HOME": str(tmp_path / "config")},
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stderr[-2000:]
            figures = json.loads(done.stdout.splitlines()[-1])
            assert figures["kind"] == kind
            assert figures["calls_placed"] == CONTACTS, figures
            assert figures["unknown"] == 0
            assert figures["run_s"] > 0
            assert figures["journal_busy_s"] > 0
            dialed = [c["phoneNumber"] for c in emu.calls_created()]
            assert sorted(dialed) == sorted(numbers), kind  # each contact once
    # The journal is where each kind was told: a file of its own, the store's SQLite file
    # (beside the service's tables, with the campaign's lease) and PostgreSQL.
    for kind in ("file", "sqlite"):
        with contextlib.closing(sqlite3.connect(targets[kind])) as conn:
            got = conn.execute("SELECT COUNT(*) FROM campaign_attempts").fetchone()
            assert got == (CONTACTS,), kind
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            assert ("leases" in tables) == (kind == "sqlite"), tables
    with psycopg.connect(pg_url) as pg:
        assert pg.execute("SELECT COUNT(*) FROM campaign_attempts").fetchone() == (CONTACTS,)
