"""The basics a new user expects: --version, completion, config init, logout, watch --agent, and
a plain refusal of what --sandbox cannot do."""

from __future__ import annotations

import os
import pty
import select
import signal
import stat
import subprocess
import time
from importlib.metadata import version
from pathlib import Path
from typing import IO

import pytest

from gcdial.emulator import EmulatorServer

from .helpers import (
    ALICE,
    ANSWERS,
    GCDIAL,
    Cli,
    Result,
    assert_clean,
    emulator_env,
    placed_id,
    secret_forms,
)

SECRET = "not-a-real-secret-0123456789"


def _config_dir(base_env: dict[str, str]) -> Path:
    return Path(base_env["XDG_CONFIG_HOME"]) / "gcdial"


def test_version(run_gcdial: Cli) -> None:
    result = run_gcdial("--version")
    assert result.code == 0
    assert result.out == f"gcdial {version('gcdial')}\n"


def test_shell_completion_script_and_completions(run_gcdial: Cli) -> None:
    # The documented way to get one shell's script, whatever shell runs the command.
    for shell, marker in (
        ("bash", "complete -o"),
        ("zsh", "#compdef gcdial"),
        ("fish", "complete"),
    ):
        script = run_gcdial(env={"_GCDIAL_COMPLETE": f"source_{shell}"})
        assert script.code == 0, script.err
        assert "_GCDIAL_COMPLETE" in script.out
        assert marker in script.out
    completed = run_gcdial(
        env={"_GCDIAL_COMPLETE": "complete_bash", "COMP_WORDS": "gcdial cam", "COMP_CWORD": "1"}
    )
    assert completed.out.split() == ["campaign"]


@pytest.fixture
def init_script(base_env: dict[str, str], work_dir: Path) -> Cli:
    """Run ``gcdial config init ARGS --client-secret-stdin`` with the secret piped in."""

    def run(*args: str, stdin: str = SECRET + "\n") -> Result:
        proc = subprocess.run(
            [str(GCDIAL), "config", "init", *args],
            env=base_env,
            cwd=work_dir,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        assert_clean(result, [SECRET])
        return result

    return run


def test_config_init_from_a_script_writes_a_working_profile(
    init_script: Cli,
    run_gcdial: Cli,
    base_env: dict[str, str],
    emulator: EmulatorServer,
) -> None:
    # The emulator's secret stands in for a real one; it must not appear anywhere either.
    result = init_script(
        "--region",
        emulator.base_url,
        "--client-id",
        emulator.client_id,
        "--client-secret-stdin",
        stdin=emulator.client_secret + "\n",
    )
    assert result.code == 0, result.err
    assert emulator.client_secret not in result.out + result.err
    config = _config_dir(base_env) / "config.toml"
    secret_file = _config_dir(base_env) / "secrets" / "default.secret"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert emulator.client_secret not in config.read_text(encoding="utf-8")
    assert secret_file.read_text(encoding="utf-8").strip() == emulator.client_secret
    # No credentials in the environment: the profile alone is enough.
    shown = run_gcdial("agent", "show", ALICE, "--json", secrets=secret_forms(emulator))
    assert shown.code == 0, shown.err
    assert shown.json()["ready"] is True


def test_config_init_keeps_other_profiles_and_refuses_to_overwrite(
    init_script: Cli, base_env: dict[str, str]
) -> None:
    first = init_script("--region", "eu_west_1", "--client-id", "a", "--client-secret-stdin")
    assert first.code == 0, first.err
    again = init_script("--region", "eu_west_1", "--client-id", "b", "--client-secret-stdin")
    assert again.code == 2
    assert "already exists" in again.err
    assert "--force" in again.err
    other = init_script(
        "--profile", "us", "--region", "us_east_1", "--client-id", "c", "--client-secret-stdin"
    )
    assert other.code == 0, other.err
    text = (_config_dir(base_env) / "config.toml").read_text(encoding="utf-8")
    assert "[profiles.default]" in text
    assert "[profiles.us]" in text
    assert SECRET not in text


@pytest.mark.parametrize(
    ("args", "missing"),
    [
        (["--client-id", "a", "--client-secret-stdin"], "--region"),
        (["--region", "eu_west_1", "--client-secret-stdin"], "--client-id"),
        (["--region", "eu_west_1", "--client-id", "a"], "--client-secret-stdin"),
    ],
)
def test_config_init_without_a_terminal_names_what_is_missing(
    init_script: Cli, args: list[str], missing: str
) -> None:
    result = init_script(*args)
    assert result.code == 2
    assert f"{missing} is missing" in result.err


def test_config_init_refuses_an_unknown_region(init_script: Cli) -> None:
    result = init_script("--region", "atlantis", "--client-id", "a", "--client-secret-stdin")
    assert result.code == 3
    assert "atlantis" in result.err


def _converse(env: dict[str, str], cwd: Path, answers: list[str]) -> tuple[int, str]:
    """Run ``config init`` on a pseudo-terminal, answering each prompt; return code and screen."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: become gcdial, and never return into pytest
        try:
            os.chdir(cwd)
            os.execve(str(GCDIAL), [str(GCDIAL), "config", "init"], env)  # noqa: S606
        finally:
            os._exit(127)
    screen = b""
    pending = list(answers)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
            # A prompt is whole when it ends in ": " (for the secret, the space is written
            # once echo is off, as a person would see it before typing).
            if pending and screen.endswith(b": "):
                os.write(fd, pending.pop(0).encode() + b"\r")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


def test_config_init_asks_at_a_terminal_and_never_echoes_the_secret(
    base_env: dict[str, str], work_dir: Path
) -> None:
    code, screen = _converse(base_env, work_dir, ["eu_west_1", "my-client", SECRET])
    assert code == 0, screen
    assert "Region" in screen
    assert "client id" in screen
    assert "client secret" in screen
    assert "my-client" in screen  # an ordinary answer is echoed...
    assert SECRET not in screen  # ...the secret is not
    secret_file = _config_dir(base_env) / "secrets" / "default.secret"
    assert secret_file.read_text(encoding="utf-8").strip() == SECRET


def test_logout_removes_the_stored_token(run_gcdial: Cli, base_env: dict[str, str]) -> None:
    env = {"GENESYSCLOUD_REGION": "eu_west_1"}
    token = _config_dir(base_env) / "tokens" / "default.json"
    token.parent.mkdir(parents=True)
    token.write_text("{}", encoding="utf-8")
    gone = run_gcdial("logout", "--json", env=env)
    assert gone.code == 0, gone.err
    assert gone.json() == {"loggedOut": True, "tokenFile": str(token)}
    assert not token.exists()
    again = run_gcdial("logout", env=env)
    assert again.code == 0
    assert "not logged in" in again.err


@pytest.mark.parametrize(
    ("args", "what"),
    [(["login", "--no-browser"], "gcdial login"), (["watch", "some-id"], "gcdial watch")],
)
def test_sandbox_refuses_what_it_cannot_do(run_gcdial: Cli, args: list[str], what: str) -> None:
    started = time.monotonic()
    result = run_gcdial("--sandbox", *args, timeout=20)
    assert result.code == 2, result.err
    assert f"`{what}` cannot work with --sandbox:" in result.err
    assert "emulator serve" in result.err
    assert "sandbox: built-in emulator" not in result.err  # refused before starting one
    assert time.monotonic() - started < 10


def test_watch_needs_an_id_or_an_agent(cli: Cli) -> None:
    neither = cli("watch")
    both = cli("watch", "some-id", "--agent", ALICE)
    for result in (neither, both):
        assert result.code == 2
        assert "either a conversation id or --agent" in result.err


def _read_until(stream: IO[str], words: str) -> list[str]:
    lines: list[str] = []
    for line in stream:
        lines.append(line)
        if words in line:
            return lines
    raise AssertionError(f"{words!r} never came: {lines}")


def test_watch_agent_follows_every_call_until_ctrl_c(
    cli: Cli, emulator: EmulatorServer, base_env: dict[str, str], work_dir: Path
) -> None:
    emulator.set_speed(10)
    with subprocess.Popen(
        [str(GCDIAL), "watch", "--agent", ALICE, "--json"],
        env={**base_env, **emulator_env(emulator)},
        cwd=work_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as watcher:
        assert watcher.stdout is not None
        assert watcher.stderr is not None
        _read_until(watcher.stderr, "watching every call of")
        first = placed_id(cli("call", "+14155550165", "--agent", ALICE, "--wait", "--json"))
        second = cli("call", ANSWERS, "--agent", ALICE).out.strip()
        lines = _read_until(watcher.stdout, '"outcome": "busy"')
        lines += _read_until(watcher.stdout, '"outcome": "answered"')
        watcher.send_signal(signal.SIGINT)
        rest, err = watcher.communicate(timeout=30)
    result = Result(watcher.returncode, "".join(lines) + rest, err)
    assert_clean(result, secret_forms(emulator))
    assert result.code == 0, err
    assert "stopped watching" in err
    seen = result.json_lines()
    outcomes = {line["conversationId"]: line["outcome"] for line in seen if "outcome" in line}
    assert outcomes == {first: "busy", second: "answered"}
    assert {line["event"] for line in seen if line["conversationId"] == first} >= {
        "agent_alerting",
        "participant_disconnected",
        "call_ended",
    }


def test_watch_agent_without_notifications_says_why(cli: Cli, emulator: EmulatorServer) -> None:
    emulator.add_fault(route="notifications", mode="status", status=403)
    result = cli("watch", "--agent", ALICE, "--timeout", "5")
    assert result.code == 4, result.err
    assert "No notifications channel" in result.err
    assert "watch --agent` learns of new calls from notifications only" in result.err
    assert "internal error" not in result.err
