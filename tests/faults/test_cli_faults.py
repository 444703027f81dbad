"""``gcdial call`` under faults, run as a user would: exit code and message say what is known."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gcdial.emulator import EmulatorServer

from .support import ALICE, CREATE_ROUTE, created_numbers, fresh_number, route_count

GCDIAL = Path(sys.executable).parent / "gcdial"
EXIT_OK, EXIT_UNKNOWN, EXIT_RATE_LIMITED = 0, 5, 9

# id, fault, extra environment, exit code (None: any refusal but 0/1/5), calls created
# The emulator's details show a call 0.2 simulated seconds after its creation (set in the test),
# so a settle time of one real second is plenty.
QUICK_SETTLE = {"GCDIAL_ANALYTICS_SETTLE_S": "1"}
NO_ANALYTICS = {
    "GENESYSCLOUD_OAUTHCLIENT_ID": "sandbox-no-analytics",
    "GENESYSCLOUD_OAUTHCLIENT_SECRET": "sandbox-no-analytics-secret",
}

CASES: list[tuple[str, dict[str, Any], dict[str, str], int | None, int]] = [
    # A lost answer is resolved by the ladder: placed (found live), or proven not placed.
    (
        "drop-after-create",
        {"route": "create_call", "mode": "drop_after_create"},
        QUICK_SETTLE,
        EXIT_OK,
        1,
    ),
    (
        "hang-after-create",
        {"route": "create_call", "mode": "hang_after_create", "seconds": 5},
        {"GCDIAL_TIMEOUT_S": "0.5", **QUICK_SETTLE},
        EXIT_OK,
        1,
    ),
    ("503", {"route": "create_call", "mode": "status", "status": 503}, QUICK_SETTLE, 40, 0),
    (
        "503-no-analytics",
        {"route": "create_call", "mode": "status", "status": 503},
        {**QUICK_SETTLE, **NO_ANALYTICS, "GCDIAL_RESOLVE_TIMEOUT": "2"},
        EXIT_UNKNOWN,
        0,
    ),
    (
        "429-once",
        {"route": "create_call", "mode": "status", "status": 429, "retry_after": 1, "count": 1},
        {},
        EXIT_OK,
        1,
    ),
    (
        "429-storm",
        {"route": "create_call", "mode": "status", "status": 429, "retry_after": 0},
        {},
        EXIT_RATE_LIMITED,
        0,
    ),
    ("token-503", {"route": "token", "mode": "status", "status": 503}, {}, None, 0),
    (
        "slow-create",
        {"route": "create_call", "mode": "latency", "seconds": 0.3},
        {},
        EXIT_OK,
        1,
    ),
]


@pytest.mark.parametrize(
    ("case", "fault", "extra", "code", "created"), CASES, ids=[c[0] for c in CASES]
)
def test_gcdial_call_under_a_fault(
    emulator: EmulatorServer,
    tmp_path: Path,
    case: str,
    fault: dict[str, Any],
    extra: dict[str, str],
    code: int | None,
    created: int,
) -> None:
    emulator.set_analytics(ingestion_delay=0.2)
    emulator.add_fault(**fault)
    number = fresh_number()
    resolve_timeout = extra.get("GCDIAL_RESOLVE_TIMEOUT", "20")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "GCDIAL_CALLING_WINDOW": "00:00-24:00",
        "XDG_CONFIG_HOME": str(tmp_path / ".config"),
        "NO_COLOR": "1",
        "GCDIAL_BASE_URL": emulator.base_url,
        "GENESYSCLOUD_OAUTHCLIENT_ID": emulator.client_id,
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": emulator.client_secret,
        **extra,
    }
    args = ["--no-check", "--json", "--resolve-timeout", resolve_timeout]
    proc = subprocess.run(
        [str(GCDIAL), "call", number, "--agent", ALICE, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    emulator.clear_faults()
    assert "Traceback" not in proc.stderr
    if code is None:
        assert proc.returncode not in {EXIT_OK, 1, EXIT_UNKNOWN}, proc.stderr
    else:
        assert proc.returncode == code, proc.stderr
    assert created_numbers(emulator)[number] == created
    assert max(created_numbers(emulator).values(), default=0) <= 1
    posts = route_count(emulator, CREATE_ROUTE)
    assert posts <= (4 if case.startswith("429") else 1), f"the POST was sent {posts} times"
    document = json.loads(proc.stdout)
    if proc.returncode == EXIT_UNKNOWN:
        # Still unknown: what was sent, when, and the advice not to redial.
        assert document["resolution"]["verdict"] == "unknown"
        assert document["number"] == number
        lost = document["resolution"]["evidence"][0]["detail"]
        assert "was sent at" in lost
        assert f"/api/v2/conversations/calls/user/{ALICE}" in lost
        assert "may or may not" in lost
        assert "do not dial again" in proc.stderr
    elif proc.returncode == EXIT_OK:
        assert document["placed"] is True
        assert document["id"] in {c["id"] for c in emulator.calls_created()}
    elif proc.returncode == 40:
        assert document["resolution"]["verdict"] == "not_placed"
        assert "safe to dial again" in proc.stderr


def test_outcome_unknown_names_the_number_that_was_sent(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.add_fault(route="create_call", mode="status_without_create", status=503)
    number = fresh_number()
    proc = subprocess.run(
        [str(GCDIAL), "call", number, "--agent", ALICE, "--no-check", "--resolve-timeout", "1"],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "GCDIAL_CALLING_WINDOW": "00:00-24:00",
            "GCDIAL_BASE_URL": emulator.base_url,
            **NO_ANALYTICS,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    assert proc.returncode == EXIT_UNKNOWN
    assert number in proc.stderr
    assert "gcdial resolve" in proc.stderr


def test_a_failed_channel_create_says_what_failed_and_that_it_polls(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """Only the create-call's lost answer is worded "may or may not have been placed": a 503 on
    the notifications channel's POST (also never re-sent) says what failed and what gcdial does
    instead."""
    emulator.add_fault(route="notifications", mode="status", status=503)
    proc = subprocess.run(
        [str(GCDIAL), "call", fresh_number(), "--agent", ALICE, "--no-check", "--wait"],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "GCDIAL_CALLING_WINDOW": "00:00-24:00",
            "NO_COLOR": "1",
            "GCDIAL_BASE_URL": emulator.base_url,
            "GENESYSCLOUD_OAUTHCLIENT_ID": emulator.client_id,
            "GENESYSCLOUD_OAUTHCLIENT_SECRET": emulator.client_secret,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    emulator.clear_faults()
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "may or may not" not in proc.stderr
    assert "rung twice" not in proc.stderr
    assert "/api/v2/notifications/channels got no usable answer" in proc.stderr
    assert "(the server answered 503)" in proc.stderr
    assert "Following calls by polling." in proc.stderr
