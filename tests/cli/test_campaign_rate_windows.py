"""A campaign held by the rate budget, as the user runs it: every window used up, nothing
refused (0 x 429), and the summary says how each window went (requests, time held at its end)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .helpers import Result, emulator_env, secret_forms

LIMIT = 12
# Longer than a second: the reset header is whole seconds, so a window's last second is in doubt
# and a request sent in it counts in both windows (a 1 s window would be all doubt).
WINDOW_S = 2.0
AGENTS = 6
DOMAIN = "windows.example.com"


def test_a_rate_bound_campaign_uses_its_windows_without_a_429(
    make_emulator: Any, run_gcdial: Callable[..., Result], tmp_path: Path, work_dir: Path
) -> None:
    fixture = tmp_path / "org.json"
    fixture.write_text(
        json.dumps(
            {
                "clients": [{"id": "cli", "secret": "cli-secret", "grant": "client_credentials"}],
                "generate_agents": {"count": AGENTS, "email_domain": DOMAIN},
            }
        )
    )
    emu = make_emulator(
        speed=5000,
        fixture=fixture,
        rate_limit_per_minute=LIMIT,
        rate_limit_window_s=WINDOW_S,
        token_lifetime_s=1e9,
        channel_lifetime_s=1e9,
        heartbeat_interval_s=3600,
    )
    contacts = work_dir / "contacts.csv"
    rows = [f"+1415555{n:04d}" for n in range(100, 140)]  # 40 answered numbers
    contacts.write_text("phone\n" + "\n".join(rows) + "\n")
    agents = ",".join(f"agent{n:03d}@{DOMAIN}" for n in range(1, AGENTS + 1))
    result = run_gcdial(
        "--json", "campaign", "run", str(contacts), "--agents", agents,
        "--window", "00:00-24:00", "--max-attempts", "1",
        env=emulator_env(emu), secrets=secret_forms(emu), timeout=90,
    )  # fmt: skip
    assert result.code == 0, result.err
    summary = json.loads(result.out.strip().splitlines()[-1])
    assert summary["event"] == "summary"
    assert summary["calls_placed"] == len(rows)
    ledger = emu.rate_windows()
    windows = [w for w in ledger["windows"] if "token" in w["key"]]
    assert ledger["refused"] == 0, windows
    assert summary["rate_limited"] == 0
    # 40 calls and the agent checks need several windows; all but the last were used up.
    assert len(windows) >= 4, windows
    assert all(w["allowed"] == LIMIT for w in windows[:-1]), windows
    lived = summary["rate_windows"]
    assert len(lived) >= 3, lived
    assert all(w["sent"] <= LIMIT for w in lived), lived
    assert any(w["held_s"] > 0 for w in lived), lived
