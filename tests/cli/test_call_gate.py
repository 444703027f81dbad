"""``gcdial call`` passes the gate: the calling window, the --dnc file, and the agent's row in
the machine's file of live calls (shared with every ``gcdial campaign run``).

The installed script against an emulator; the emulator's ledger of created calls says whether
anything was sent. No clock is faked: the night-time number is made by a window that excludes
the customer's current local hour.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gcdial.emulator import EmulatorConfig, EmulatorServer
from gcdial.local_leases import LocalAgentLeases

from .helpers import emulator_env

DOMAIN = "gate.example.com"
AGENT = f"agent001@{DOMAIN}"
GCDIAL = Path(sys.executable).parent / "gcdial"
NUMBER = "+14155550100"  # America/Los_Angeles; answers in the emulator
ZONE = "America/Los_Angeles"


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    path = tmp_path_factory.mktemp("org") / "org.json"
    path.write_text(
        json.dumps(
            {
                "clients": [{"id": "gt", "secret": "gt-secret", "grant": "client_credentials"}],
                "generate_agents": {"count": 1, "email_domain": DOMAIN},
            }
        )
    )
    with EmulatorServer(EmulatorConfig(speed=100.0, admin=True, fixture=path)) as server:
        yield server


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def _gcdial(home: Path, org: EmulatorServer, *args: str, **env: str) -> tuple[int, str, str]:
    proc = subprocess.run(
        [str(GCDIAL), *args],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "NO_COLOR": "1",
            "COLUMNS": "200",
            **emulator_env(org),
            **env,
        },
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


def _closed_window() -> str:
    """A two-hour window starting three hours after the customer's current local time: now is
    outside it whatever the hour the suite runs at."""
    local = datetime.now(UTC).astimezone(ZoneInfo(ZONE))
    start = (local + timedelta(hours=3)).replace(minute=0)
    end = start + timedelta(hours=2)
    return f"{start:%H}:00-{end:%H}:00"


def _locks(home: Path) -> Path:
    return home / ".local" / "state" / "gcdial" / "live-agents.sqlite3"


def test_a_night_time_number_and_a_listed_number_are_refused_before_anything_is_sent(
    org: EmulatorServer, home: Path
) -> None:
    org.reset()
    window = _closed_window()
    # The window from the option, and from the environment (as a user's profile would set it).
    for args, env in (
        (("--window", window), {}),
        ((), {"GCDIAL_CALLING_WINDOW": window}),
    ):
        code, out, err = _gcdial(home, org, "call", NUMBER, "--agent", AGENT, *args, **env)
        assert code == 4, err
        assert out == ""
        assert "Traceback" not in err
        assert f"outside the calling window {window}" in err
        assert "The customer's local time:" in err
        assert ZONE in err
        assert "--any-hour" in err
        assert "--window 00:00-24:00" in err
    # A bad --timezone is bad input, named.
    code, _, err = _gcdial(
        home, org, "call", NUMBER, "--agent", AGENT, "--window", window, "--timezone", "Nowhere/X"
    )
    assert code == 2, err
    assert "--timezone" in err

    dnc = home / "dnc.txt"
    dnc.write_text("# never call\n(415) 555-0100\n")
    code, out, err = _gcdial(
        home, org, "call", NUMBER, "--agent", AGENT, "--dnc", str(dnc), "--any-hour"
    )
    assert code == 4, err
    assert f"{NUMBER} is on the do-not-call list" in err
    assert "Traceback" not in err
    assert org.calls_created() == []
    # Nothing was placed, so the agent holds no row.
    with sqlite3.connect(_locks(home)) as conn:
        assert conn.execute("SELECT count(*) FROM live_agents").fetchone() == (0,)
    conn.close()

    # --any-hour overrides the window (and --sandbox implies it): the call goes.
    code, out, err = _gcdial(
        home, org, "call", NUMBER, "--agent", AGENT, "--window", window, "--any-hour", "--wait"
    )
    assert code == 0, err
    assert len(org.calls_created()) == 1
    with sqlite3.connect(_locks(home)) as conn:  # followed to its end: released
        assert conn.execute("SELECT count(*) FROM live_agents").fetchone() == (0,)
    conn.close()


def test_an_agent_on_a_campaign_call_or_an_unfollowed_call_is_refused(
    org: EmulatorServer, home: Path, tmp_path: Path
) -> None:
    org.reset()
    # About the agent's row, not the rules: --any-hour, so the test means the same at any hour.
    # A campaign run holds the agent: its row, as `gcdial campaign run` writes it.
    code, out, err = _gcdial(home, org, "agent", "show", AGENT, "--json")
    assert code == 0, err
    agent_id = json.loads(out)["agent"]["id"]
    campaign = LocalAgentLeases(
        _locks(home), org.base_url, str(tmp_path / "east.csv.journal"), ttl_s=60
    )
    try:
        assert campaign.claim_now(agent_id, "east.csv.journal#7") is None
        code, out, err = _gcdial(home, org, "call", NUMBER, "--agent", AGENT, "--any-hour")
        assert code == 7, err
        assert "the agent has a live call (east.csv.journal#7)" in err
        assert "Traceback" not in err
        assert out == ""
        assert org.calls_created() == []
        campaign.release_now(agent_id, "east.csv.journal#7")
    finally:
        campaign.close()

    # Free again: a call without --wait is placed and keeps the agent's row (bounded expiry)...
    org.set_speed(1)  # this number talks for 59 s: still live when the next call is tried
    code, out, err = _gcdial(home, org, "call", "+14155550149", "--agent", AGENT, "--any-hour")
    assert code == 0, err
    conversation = out.strip()
    assert conversation
    with sqlite3.connect(_locks(home)) as conn:
        rows = conn.execute("SELECT call_id, expires_at FROM live_agents").fetchall()
    conn.close()
    assert [r[0] for r in rows] == [conversation]
    # ...so a second call for the same agent is refused, naming the first.
    code, _, err = _gcdial(home, org, "call", "+14155550101", "--agent", AGENT, "--any-hour")
    assert code == 7, err
    assert conversation in err
    assert len(org.calls_created()) == 1
    # Once that call has ended (hung up here), the next call takes its row over.
    code, _, err = _gcdial(home, org, "hangup", conversation)
    assert code == 0, err
    org.set_speed(100)
    code, out, err = _gcdial(
        home, org, "call", "+14155550101", "--agent", AGENT, "--any-hour", "--wait"
    )
    assert code == 0, err
    assert len(org.calls_created()) == 2
    with sqlite3.connect(_locks(home)) as conn:
        assert conn.execute("SELECT count(*) FROM live_agents").fetchone() == (0,)
    conn.close()
