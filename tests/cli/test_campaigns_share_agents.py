"""Two ``gcdial campaign run`` processes over the same agent never give it two calls at once.

The installed script, twice at the same time, against one emulator; the emulator's ledger of
overlapping calls per agent is the judge. Both runs share this user's agent rows
(``gcdial.local_leases``): each waits while the other's call is live, and both finish.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gcdial.emulator import EmulatorConfig, EmulatorServer
from gcdial.local_leases import LocalAgentLeases

from .helpers import emulator_env

DOMAIN = "shared.example.com"
AGENT = f"agent001@{DOMAIN}"
GCDIAL = Path(sys.executable).parent / "gcdial"


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    path = tmp_path_factory.mktemp("org") / "org.json"
    path.write_text(
        json.dumps(
            {
                "clients": [{"id": "sh", "secret": "sh-secret", "grant": "client_credentials"}],
                "generate_agents": {"count": 1, "email_domain": DOMAIN},
            }
        )
    )
    with EmulatorServer(EmulatorConfig(speed=100.0, admin=True, fixture=path)) as server:
        yield server


def _start(
    folder: Path, name: str, numbers: list[str], env: dict[str, str]
) -> subprocess.Popen[str]:
    (folder / f"{name}.csv").write_text("phone\n" + "".join(f"{n}\n" for n in numbers))
    args = [str(GCDIAL), "campaign", "run", f"{name}.csv", "--agents", AGENT,
            "--window", "00:00-24:00", "--json"]  # fmt: skip
    return subprocess.Popen(
        args, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_two_runs_on_one_agent_take_turns_and_both_finish(
    org: EmulatorServer, tmp_path: Path
) -> None:
    org.reset()
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "NO_COLOR": "1",
        **emulator_env(org),
    }
    # Numbers that answer in the emulator; each call talks a little while.
    first = _start(tmp_path, "east", [f"+1415555{100 + i:04d}" for i in range(4)], env)
    second = _start(tmp_path, "west", [f"+1415555{110 + i:04d}" for i in range(4)], env)
    outs = [p.communicate(timeout=120) for p in (first, second)]
    for process, (_out, err) in zip((first, second), outs, strict=True):
        assert process.returncode == 0, err
        assert "Traceback" not in err

    created = org.calls_created()
    assert len(created) == 8, [c["body"].get("phoneNumber") for c in created]
    assert org.overlaps()["total"] == 0, org.overlaps()
    # The rows were released as the calls ended, and the file is the user's alone.
    locks = home / ".local" / "state" / "gcdial" / "live-agents.sqlite3"
    assert oct(locks.stat().st_mode & 0o777) == "0o600"
    with sqlite3.connect(locks) as conn:
        assert conn.execute("SELECT count(*) FROM live_agents").fetchone() == (0,)
    conn.close()


def test_a_row_is_held_until_released_or_expired_and_a_resumed_run_inherits_its_own(
    tmp_path: Path,
) -> None:
    now = [1000.0]
    path = tmp_path / "locks.sqlite3"
    org = "https://api.example.com"
    east = LocalAgentLeases(path, org, "/x/east.db", ttl_s=60, clock=lambda: now[0])
    west = LocalAgentLeases(path, org, "/x/west.db", ttl_s=60, clock=lambda: now[0])
    other_org = LocalAgentLeases(
        path, "https://api.other.example", "/x/west.db", clock=lambda: now[0]
    )
    try:
        assert east.claim_now("u1", "east.db#1") is None
        assert west.claim_now("u1", "west.db#1") == "east.db#1"  # busy: names the call
        assert other_org.claim_now("u1", "west.db#1") is None  # another org's u1
        east.rebind_now("u1", "east.db#1", "east.db#2")
        assert west.claim_now("u1", "west.db#1") == "east.db#2"
        east.release_now("u1", "east.db#2")
        assert west.claim_now("u1", "west.db#1") is None
        # west's process dies (no heartbeat): its row holds for ttl_s, then lapses...
        now[0] += 59
        assert east.claim_now("u1", "east.db#3") == "west.db#1"
        # ...except for the run resuming west's own journal, which reconciles that call itself.
        resumed = LocalAgentLeases(path, org, "/x/west.db", clock=lambda: now[0])
        assert resumed.claim_now("u1", "west.db#2") is None
        resumed.close()
        now[0] += 61
        assert east.claim_now("u1", "east.db#3") is None
        east.renew_now()
        now[0] += 59
        assert west.claim_now("u1", "west.db#9") == "east.db#3"  # renewed by the heartbeat
    finally:
        for leases in (east, west, other_org):
            leases.close()
