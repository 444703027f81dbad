"""Output that goes to a pipe or a file: the reader may leave early, and data is never wrapped."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gcdial.cli.output import PIPE_CLOSED_EXIT
from gcdial.emulator import EmulatorServer

from .helpers import (
    ALICE,
    ALICE_ID,
    ANSWERS,
    GCDIAL,
    Cli,
    Result,
    assert_clean,
    emulator_env,
    placed_id,
)

LONG_AGENT_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


def _into_closed_pipe(
    env: dict[str, str], cwd: Path, *args: str, keep: int = 1, secrets: list[str] | None = None
) -> Result:
    """``gcdial ARGS | head -KEEP``: read ``keep`` lines of stdout, then close it."""
    with subprocess.Popen(
        [str(GCDIAL), *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        kept = [proc.stdout.readline() for _ in range(keep)]
        proc.stdout.close()
        err = proc.stderr.read()
        code = proc.wait(timeout=60)
    result = Result(code, "".join(kept), err)
    assert_clean(result, secrets or [])
    return result


def _quietly_gone(result: Result) -> None:
    assert result.code == PIPE_CLOSED_EXIT, result.err
    assert "internal error" not in result.err
    assert "BrokenPipe" not in result.err
    assert "Exception ignored" not in result.err


def test_demo_json_into_head_ends_quietly(base_env: dict[str, str], work_dir: Path) -> None:
    result = _into_closed_pipe(base_env, work_dir, "--sandbox", "demo", "--json")
    assert result.out.startswith("{")
    _quietly_gone(result)


def test_call_wait_into_head_ends_quietly(
    base_env: dict[str, str], work_dir: Path, emulator: EmulatorServer
) -> None:
    emulator.set_speed(5)
    env = {**base_env, **emulator_env(emulator)}
    result = _into_closed_pipe(env, work_dir, "call", ANSWERS, "--agent", ALICE, "--wait")
    # The first line of the timeline is read; the lines that follow meet a closed pipe.
    assert "agent's phone is ringing" in result.out
    _quietly_gone(result)


def test_a_long_listing_into_head_ends_quietly(base_env: dict[str, str], work_dir: Path) -> None:
    # Far more than a pipe buffer holds, so the writer meets the closed pipe for sure.
    contacts = work_dir / "big.csv"
    rows = "".join(f"Contact {n},+1415555{n:04d}\n" for n in range(4000))
    contacts.write_text("name,phone\n" + rows, encoding="utf-8")
    result = _into_closed_pipe(
        base_env, work_dir, "campaign", "run", "big.csv", "--agents", ALICE, "--dry-run", keep=2
    )
    _quietly_gone(result)


def test_dry_run_request_is_not_wrapped_in_a_pipe(cli: Cli) -> None:
    result = cli(
        "call",
        ANSWERS,
        "--agent",
        LONG_AGENT_ID,
        "--dry-run",
        "--attr",
        "note=" + "x" * 120,
        env={"COLUMNS": "40"},
    )
    assert result.code == 0, result.err
    first = result.out.splitlines()[0]
    assert first.startswith("POST ")
    assert first.endswith(f"/calls/user/{LONG_AGENT_ID}")
    assert '"note": "' + "x" * 120 + '"' in result.out


def test_tables_become_plain_rows_in_a_pipe(cli: Cli) -> None:
    found = cli("agent", "find", "Alice Anders", env={"COLUMNS": "40"})
    assert found.code == 0, found.err
    assert found.out.splitlines() == [
        "id\tname\temail\tstate",
        f"{ALICE_ID}\tAlice Anders\t{ALICE}\tactive",
    ]
    shown = cli("agent", "show", ALICE, env={"COLUMNS": "40"})
    assert f"id\t{ALICE_ID}" in shown.out.splitlines()
    assert "ready to dial\tyes" in shown.out.splitlines()


@pytest.mark.parametrize("columns", ["30", "200"])
def test_status_rows_are_whole_at_any_width(
    cli: Cli, emulator: EmulatorServer, columns: str
) -> None:
    cid = placed_id(cli("call", "+14155550165", "--agent", ALICE, "--wait", "--json"))
    status = cli("status", cid, env={"COLUMNS": columns})
    lines = status.out.splitlines()
    assert lines[0] == f"Call {cid}"
    assert lines[1].split("\t") == [
        "role",
        "who",
        "state",
        "started (UTC)",
        "connected (UTC)",
        "ended (UTC)",
        "ended how",
    ]
    customer = next(line for line in lines if line.startswith("external\t"))
    assert customer.split("\t")[1] == "tel:+14155550165"
    assert customer.endswith("error.ininedgecontrol.remote.busy")
