"""``agent``, ``doctor``, ``login``, ``demo`` and ``--sandbox``, run as a user would."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from gcdial.emulator import EmulatorServer

from .helpers import (
    ALICE,
    ALICE_ID,
    ANSWERS,
    DAVE,
    ERIN,
    GCDIAL,
    Cli,
    Result,
    assert_clean,
    closed_port,
    emulator_env,
    secret_forms,
)


def test_agent_show(cli: Cli) -> None:
    ready = cli("agent", "show", ALICE)
    assert ready.code == 0, ready.err
    assert "alice-webrtc" in ready.out
    assert "AVAILABLE" in ready.out
    assert "ready to dial" in ready.out
    data = cli("agent", "show", ALICE_ID, "--json").json()
    assert data["ready"] is True
    assert data["agent"]["id"] == ALICE_ID
    assert data["presence"] == "AVAILABLE"


@pytest.mark.parametrize(("agent", "reason"), [(DAVE, "no_station"), (ERIN, "inactive")])
def test_agent_show_not_ready(cli: Cli, agent: str, reason: str) -> None:
    result = cli("agent", "show", agent, "--json")
    assert result.code == 7
    data = result.json()
    assert data["ready"] is False
    assert data["reason"] == reason
    assert "error:" in result.err


def test_agent_find(cli: Cli) -> None:
    by_name = cli("agent", "find", "Alice Anders")
    assert by_name.code == 0, by_name.err
    assert ALICE in by_name.out
    by_email = cli("agent", "find", "BOB@example.com", "--json").json()
    assert [u["email"] for u in by_email["results"]] == ["bob@example.com"]
    none = cli("agent", "find", "nobody@example.com", "--json")
    assert none.code == 4
    assert none.json() == {"results": []}


def test_doctor_all_green(cli: Cli) -> None:
    result = cli("doctor", "--agent", ALICE)
    assert result.code == 0, result.err
    for name in ("region", "credentials", "login host", "token", "API", "permissions", "agent"):
        assert f"✓ {name}:" in result.out, name
    assert "✗" not in result.out
    assert "GENESYSCLOUD_OAUTHCLIENT_ID" in result.out  # where each setting came from
    data = cli("doctor", "--json").json()
    assert data["ok"] is True
    assert {c["status"] for c in data["checks"]} <= {"ok", "skip"}


def test_doctor_names_the_broken_layer(run_gcdial: Cli, cli: Cli, emulator: EmulatorServer) -> None:
    agent = cli("doctor", "--agent", ERIN)
    assert agent.code == 7
    assert "✗ agent:" in agent.out
    assert "fix: Reactivate" in agent.out
    wrong = {**emulator_env(emulator), "GENESYSCLOUD_OAUTHCLIENT_SECRET": "not-the-secret-1"}
    token = run_gcdial("doctor", "--json", env=wrong, secrets=["not-the-secret-1"])
    assert token.code == 3
    failed = [c for c in token.json()["checks"] if c["status"] == "fail"]
    assert [c["name"] for c in failed] == ["token"]
    assert "wrong region" in failed[0]["fix"]
    down = {**emulator_env(emulator), "GCDIAL_BASE_URL": f"http://127.0.0.1:{closed_port()}"}
    host = run_gcdial("doctor", env=down, secrets=secret_forms(emulator))
    assert host.code == 6
    assert "✗ login host:" in host.out
    nothing = run_gcdial("doctor")
    assert nothing.code == 3
    assert "✗ settings:" in nothing.out


@pytest.mark.parametrize("browser", [[], ["--no-browser"]])
def test_login_then_dial_as_yourself(
    base_env: dict[str, str], work_dir: Path, emulator: EmulatorServer, browser: list[str]
) -> None:
    # No DISPLAY in base_env: without --no-browser, gcdial must see it cannot open one either.
    env = {
        **base_env,
        "GCDIAL_BASE_URL": emulator.base_url,
        "GCDIAL_LOGIN_CLIENT_ID": "sandbox-pkce",
    }
    proc = subprocess.Popen(
        [str(GCDIAL), "login", *browser, "--timeout", "20"],
        env=env,
        cwd=work_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    url = None
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("http"):
            url = line.strip()
            break
    assert url is not None, "".join(seen)
    assert "code_challenge_method=S256" in url
    # The browser's part: the emulator auto-approves alice and redirects to the loopback server.
    approved = httpx.get(url, follow_redirects=True, timeout=10)
    assert approved.status_code == 200
    out, err = proc.communicate(timeout=20)
    result = Result(proc.returncode, out, "".join(seen) + err)
    assert_clean(result, [])
    assert result.code == 0, result.err
    token_file = Path(base_env["XDG_CONFIG_HOME"]) / "gcdial" / "tokens" / "default.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert "alice@example.com" in result.err
    me = subprocess.run(
        [str(GCDIAL), "call", ANSWERS, "--agent", "me", "--dry-run", "--json"],
        env={**base_env, "GCDIAL_BASE_URL": emulator.base_url},
        cwd=work_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert_clean(Result(me.returncode, me.stdout, me.stderr), [])
    assert me.returncode == 0, me.stderr
    # A user token dials from the token owner's own phone: the route without an agent id.
    assert json.loads(me.stdout)["url"] == f"{emulator.base_url}/api/v2/conversations/calls"


def test_login_without_a_client_says_how(run_gcdial: Cli, emulator: EmulatorServer) -> None:
    result = run_gcdial("login", env={"GCDIAL_BASE_URL": emulator.base_url})
    assert result.code == 3
    assert "GCDIAL_LOGIN_CLIENT_ID" in result.err


def test_demo_runs_without_a_terminal_or_credentials(run_gcdial: Cli) -> None:
    result = run_gcdial("demo", "--speed", "50")
    assert result.code == 0, result.err
    assert "outcome: answered" in result.out
    assert "customer answered" in result.out
    assert "Alice" in result.err
    lines = run_gcdial("demo", "--speed", "50", "--to", "+14155550160", "--json")
    assert lines.code == 11
    assert lines.json_lines()[-1]["outcome"] == "busy"


@pytest.mark.slow
def test_make_demo_default_pace_is_quick(run_gcdial: Cli) -> None:
    result = run_gcdial("demo", timeout=50)
    assert result.code == 0, result.err
    assert "outcome: answered" in result.out


def test_sandbox_flag_on_any_command(run_gcdial: Cli) -> None:
    env = {"GCDIAL_SANDBOX_SPEED": "50"}
    placed = run_gcdial("--sandbox", "call", "+14155550170", "--agent", ALICE, "--wait", env=env)
    assert placed.code == 12, placed.err
    assert "sandbox: built-in emulator at http://127.0.0.1:" in placed.err
    after_verb = run_gcdial("agent", "show", DAVE, "--sandbox", env=env)
    assert after_verb.code == 7
