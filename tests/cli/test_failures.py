"""What a user sees when the setup, the network or the server is wrong: a paragraph, an exit code,
no traceback, no secret (every run is checked for both by the ``cli``/``run_gcdial`` fixtures)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gcdial.emulator import EmulatorServer

from .helpers import ALICE, ANSWERS, Cli, closed_port, emulator_env, secret_forms

CREATE = "POST /api/v2/conversations/calls/user/{userId}"
WRONG_SECRET = "wrong-s3cret-0f-a-user"


def test_missing_credentials(run_gcdial: Cli, emulator: EmulatorServer) -> None:
    result = run_gcdial(
        "call", ANSWERS, "--agent", ALICE, env={"GCDIAL_BASE_URL": emulator.base_url}
    )
    assert result.code == 3
    assert "No credentials are set" in result.err
    assert "GENESYSCLOUD_OAUTHCLIENT_ID" in result.err


def test_missing_region(run_gcdial: Cli, emulator: EmulatorServer) -> None:
    env = emulator_env(emulator)
    del env["GCDIAL_BASE_URL"]
    result = run_gcdial("status", "c-1", env=env, secrets=secret_forms(emulator))
    assert result.code == 3
    assert "No Genesys Cloud region is set" in result.err


def test_unknown_region(cli: Cli) -> None:
    result = cli("--region", "eu_west_9", "agent", "show", ALICE)
    assert result.code == 3
    assert "Unknown region 'eu_west_9'" in result.err
    assert "Did you mean" in result.err


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_wrong_secret_points_at_the_region_first(
    run_gcdial: Cli, emulator: EmulatorServer, verbose: list[str]
) -> None:
    env = {**emulator_env(emulator), "GENESYSCLOUD_OAUTHCLIENT_SECRET": WRONG_SECRET}
    result = run_gcdial(
        *verbose, "call", ANSWERS, "--agent", ALICE, env=env, secrets=[WRONG_SECRET]
    )
    assert result.code == 3
    assert "invalid_client" in result.err
    assert "wrong region" in result.err
    if verbose:
        assert "DEBUG" in result.err or "INFO" in result.err
    assert emulator.calls_created() == []


def test_network_down(run_gcdial: Cli, emulator: EmulatorServer) -> None:
    env = {**emulator_env(emulator), "GCDIAL_BASE_URL": f"http://127.0.0.1:{closed_port()}"}
    result = run_gcdial("call", ANSWERS, "--agent", ALICE, env=env, secrets=secret_forms(emulator))
    assert result.code == 6
    assert "127.0.0.1" in result.err


def test_server_answering_html(run_gcdial: Cli, emulator: EmulatorServer, html_server: str) -> None:
    env = {**emulator_env(emulator), "GCDIAL_BASE_URL": html_server}
    result = run_gcdial("status", "c-1", env=env, secrets=secret_forms(emulator))
    assert result.code == 8
    assert "text/html" in result.err


# The settle time is a setting; the emulator's details show a call 0.2 simulated seconds after it
# is created, so one real second of settling is plenty here.
QUICK_SETTLE = {"GCDIAL_ANALYTICS_SETTLE_S": "1"}


def test_server_error_on_create_is_resolved_not_placed_and_not_resent(
    cli: Cli, emulator: EmulatorServer
) -> None:
    emulator.set_analytics(ingestion_delay=0.2)
    emulator.add_fault(route="create_call", mode="status", status=503)
    result = cli("call", ANSWERS, "--agent", ALICE, "--resolve-timeout", "20", env=QUICK_SETTLE)
    assert result.code == 40, result.err
    assert "outcome is unknown" in result.err
    assert "not placed: safe to dial again" in result.err
    assert "no conversation of the agent" in result.err
    assert emulator.request_counts()["byRoute"][CREATE] == 1
    assert emulator.calls_created() == []


def test_dropped_connection_after_create_is_resolved_placed(
    cli: Cli, emulator: EmulatorServer
) -> None:
    emulator.add_fault(route="create_call", mode="drop_after_create")
    result = cli("call", ANSWERS, "--agent", ALICE, "--json", env=QUICK_SETTLE)
    assert result.code == 0, result.err
    data = result.json()
    (created,) = emulator.calls_created()
    assert data["placed"] is True
    assert data["id"] == created["id"]
    assert data["resolution"]["verdict"] == "placed"
    assert created["body"]["attributes"]["gcdialAttemptId"] == data["attemptId"]
    assert emulator.request_counts()["byRoute"][CREATE] == 1


def test_without_analytics_a_lost_answer_stays_unknown_when_nothing_shows(
    cli: Cli, emulator: EmulatorServer
) -> None:
    emulator.add_fault(route="create_call", mode="status", status=503)
    env = {
        **QUICK_SETTLE,
        "GENESYSCLOUD_OAUTHCLIENT_ID": "sandbox-no-analytics",
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": "sandbox-no-analytics-secret",
    }
    result = cli("call", ANSWERS, "--agent", ALICE, "--resolve-timeout", "2", env=env)
    assert result.code == 5, result.err
    assert "still unknown" in result.err
    assert "gcdial resolve" in result.err
    assert "analytics:conversationDetail:view" in result.err
    assert emulator.calls_created() == []


@pytest.mark.parametrize(
    ("fault", "args", "code", "words"),
    [
        ({"route": "get_call", "status": 500}, ["status", "c-1"], 8, "HTTP 500"),
        (
            {"route": "users", "status": 403, "code": "missing.permissions"},
            ["agent", "show", ALICE],
            4,
            "directory:user:view",
        ),
        (
            {"route": "users", "status": 429, "retry_after": 0},
            ["agent", "show", ALICE],
            9,
            "HTTP 429",
        ),
    ],
)
def test_api_errors(
    cli: Cli,
    emulator: EmulatorServer,
    fault: dict[str, object],
    args: list[str],
    code: int,
    words: str,
) -> None:
    emulator.add_fault(mode="status", **fault)
    result = cli(*args)
    assert result.code == code, result.err
    assert words in result.err
    assert "contextId" in result.err


def test_credentials_from_dotenv_and_secret_file(
    run_gcdial: Cli, emulator: EmulatorServer, work_dir: Path, tmp_path: Path
) -> None:
    dotenv = work_dir / ".env"
    dotenv.write_text(
        f"GENESYSCLOUD_OAUTHCLIENT_ID={emulator.client_id}\n"
        f"GENESYSCLOUD_OAUTHCLIENT_SECRET={emulator.client_secret}\n"
        f"GCDIAL_BASE_URL={emulator.base_url}\n"
    )
    dotenv.chmod(0o600)
    secrets = secret_forms(emulator)
    assert run_gcdial("agent", "show", ALICE, secrets=secrets).code == 0
    dotenv.unlink()
    secret_file = tmp_path / "secret"
    secret_file.write_text(emulator.client_secret + "\n")
    args = ["--base-url", emulator.base_url, "--client-id", emulator.client_id]
    secret_file.chmod(0o644)
    loose = run_gcdial(*args, "--client-secret-file", str(secret_file), "agent", "show", ALICE)
    assert loose.code == 3
    assert "chmod 600" in loose.err
    os.chmod(secret_file, 0o600)
    ok = run_gcdial(
        *args, "--client-secret-file", str(secret_file), "agent", "show", ALICE, secrets=secrets
    )
    assert ok.code == 0, ok.err


def test_bad_sandbox_speed(run_gcdial: Cli) -> None:
    result = run_gcdial("--sandbox", "agent", "show", ALICE, env={"GCDIAL_SANDBOX_SPEED": "fast"})
    assert result.code == 3
    assert "GCDIAL_SANDBOX_SPEED" in result.err
