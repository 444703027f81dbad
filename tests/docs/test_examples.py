"""Every code example of README.md and docs/*.md runs here, against the emulator.

How a block runs is said by its fence (see ``examples.py`` and docs/design.md, "Writing docs").
``python`` blocks and ``console``/``sh`` commands get the environment a user of the sandbox would
have: the emulator's base URL and OAuth client in the ecosystem's variables, ``gcdial`` on PATH
(and ``.venv/bin/gcdial`` from the working directory), a fresh HOME, a fast sandbox clock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gcdial.emulator import EmulatorServer

from .examples import (
    RUNNABLE,
    SHOWN,
    Block,
    all_blocks,
    commands,
    documents,
    fence_lines,
    flat,
    output_pattern,
    parse,
)

BLOCKS = all_blocks()
RUN = [block for block in BLOCKS if block.runs]
VENV = Path(sys.executable).parent.parent
COMMAND_TIMEOUT = 40.0
# The sandbox's clock for `--sandbox` examples: a 16 s call in about 0.3 s.
SANDBOX_SPEED = "50"


def _workdir(block: Block, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A fresh directory holding the ``file=`` blocks written before ``block`` in its document."""
    work = tmp_path / "work"
    home = tmp_path / "home"
    work.mkdir()
    home.mkdir()
    (work / ".venv").symlink_to(VENV)
    for earlier in BLOCKS:
        if earlier.doc == block.doc and earlier.line < block.line and earlier.file_name:
            name = earlier.file_name
            target = home / name[2:] if name.startswith("~/") else work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(earlier.body, encoding="utf-8")
            target.chmod(0o600)  # as the docs tell users to do with files that may hold secrets
    env = {
        "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "LANG": "C.UTF-8",
        "GCDIAL_SANDBOX_SPEED": SANDBOX_SPEED,
    }
    return work, env


def _sandbox_env(emulator: EmulatorServer) -> dict[str, str]:
    return {
        "GCDIAL_BASE_URL": emulator.base_url,
        "GENESYSCLOUD_OAUTHCLIENT_ID": emulator.client_id,
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": emulator.client_secret,
    }


def _bash(script: str, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``script``; on a timeout, end everything it started (a server left running would
    outlive the test), then fail."""
    with subprocess.Popen(
        ["bash", "-c", script],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(f"timed out after {COMMAND_TIMEOUT:g} s:\n{script}\n{out}{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _show(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"


def _run_console(block: Block, work: Path, env: dict[str, str]) -> None:
    found = commands(block)
    assert found, f"{block.id}: a console block with no '$ ' command (use `text` or `sh`)"
    state = work / ".doc-env"
    for command in found:
        # Each command runs in its own bash; exported variables carry over to the next one.
        script = (
            f'[ -f "{state}" ] && . "{state}"\n{command.text}\n'
            f'rc=$?; export -p > "{state}"; exit $rc\n'
        )
        proc = _bash(script, work, env)
        where = f"{block.doc}:{command.line}: $ {command.text}"
        assert proc.returncode == command.expect_code, (
            f"{where}\nexpected exit {command.expect_code}\n{_show(proc)}"
        )
        printed = flat(proc.stdout + "\n" + proc.stderr)
        for expected in command.expect_output:
            assert output_pattern(expected).search(printed), (
                f"{where}\nshown in the doc but not printed: {expected.strip()!r}\n{_show(proc)}"
            )


@pytest.mark.parametrize("block", RUN, ids=[block.id for block in RUN])
def test_example_runs(block: Block, emulator: EmulatorServer, tmp_path: Path) -> None:
    """The example does what its document says, against the emulator."""
    work, env = _workdir(block, tmp_path)
    env.update(_sandbox_env(emulator))
    if block.lang == "console":
        _run_console(block, work, env)
    elif block.lang == "python":
        script = work / "example.py"
        script.write_text(block.body, encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, str(script)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        assert proc.returncode == 0, f"{block.id}\n{_show(proc)}"
    else:
        proc = _bash(block.body, work, env)
        assert proc.returncode == 0, f"{block.id}\n{_show(proc)}"


def test_every_fence_is_parsed() -> None:
    """The parser sees every fence line of every document (none hides an unrun example)."""
    for doc in documents():
        parsed = parse(doc)
        fences = fence_lines(doc.read_text(encoding="utf-8"))
        assert len(fences) == 2 * len(parsed), f"{doc.name}: unbalanced or unparsed fence"
        assert [block.line for block in parsed] == fences[0::2]


def test_every_block_says_what_it_is() -> None:
    """Every block names a language the doc tests know; a block not run says why."""
    for block in BLOCKS:
        assert block.lang in RUNNABLE | SHOWN, (
            f"{block.id}: fence language {block.lang!r}; use one of {sorted(RUNNABLE | SHOWN)}"
        )
        if block.no_run:
            assert block.lang in RUNNABLE, f"{block.id}: only runnable blocks take no-run"
            assert block.no_run_reason, f"{block.id}: give the reason: no-run (why)"
        if block.lang == "console" and block.runs:
            assert commands(block), f"{block.id}: a console block with no '$ ' command"


def test_unrun_examples_are_rare() -> None:
    """Most examples run: at most one runnable block in four is marked no-run."""
    runnable = [block for block in BLOCKS if block.lang in RUNNABLE]
    not_run = [block.id for block in runnable if block.no_run]
    assert len(not_run) * 4 <= len(runnable), f"too many no-run examples: {not_run}"
