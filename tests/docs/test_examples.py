"""Every code example of README.md and docs/*.md runs here, in order, as a reader pastes it.

How a block runs is said by its fence (see ``examples.py`` and docs/design.md, "Writing docs").
Each document is one walkthrough: its runnable blocks run in order in one fresh ``bash`` session
(``shell.py``), in a folder that holds only the clone's ``.venv`` and ``clients/`` (the JS client,
its packages installed by ``make js-deps``), with a fresh HOME and the
system's PATH, and nothing else prepared: a walkthrough activates the venv and starts what it
needs (``--sandbox``, its own emulator) where the reader can see it.
The reference pages listed in ``REFERENCE_PAGES`` run the same way, after the setup each states
at its top ("Running the examples on this page"): a sandbox emulator's URL and OAuth client in
the ecosystem's variables.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from gcdial.emulator import EmulatorServer

from .examples import (
    ROOT,
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
from .shell import Shell, ShellGone

BLOCKS = all_blocks()
VENV = Path(sys.executable).parent.parent
COMMAND_TIMEOUT = 60.0
# Reference pages (not walkthroughs) whose examples run against an emulator already running, as
# each says at its top ("Running the examples on this page"); every other document starts from
# nothing.
REFERENCE_PAGES = frozenset(
    {
        "docs/cli.md",
        "docs/configuration.md",
        "docs/design.md",
        "docs/emulator.md",
        "docs/library.md",
        "docs/monitoring.md",
        "docs/page.md",
        "docs/serve.md",
    }
)
DOCS = [str(doc.relative_to(ROOT)) for doc in documents()]
RUN_DOCS = [doc for doc in DOCS if any(b.runs for b in BLOCKS if b.doc == doc)]


def _fresh_shell_env(home: Path) -> dict[str, str]:
    """What a new terminal has: the system's PATH (no venv: a walkthrough activates it where the
    reader sees it), HOME, a UTF-8 locale."""
    system = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    bin_dir = str(VENV / "bin")
    return {
        "PATH": os.pathsep.join(p for p in system if p and Path(p) != Path(bin_dir)),
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }


def _reference_env(emulator: EmulatorServer, path: str) -> dict[str, str]:
    """The setup a reference page states at its top: gcdial on PATH (the venv activated), the
    sandbox's URL and OAuth client; for the service's pages, a calling window of any hour (the
    sandbox's customers in California may be asleep when the tests run)."""
    return {
        "GCDIAL_SERVE_CALLING_WINDOW": "00:00-24:00",
        "GCDIAL_CALLING_WINDOW": "00:00-24:00",
        "PATH": f"{VENV / 'bin'}{os.pathsep}{path}",
        "VIRTUAL_ENV": str(VENV),
        "GCDIAL_BASE_URL": emulator.base_url,
        "GENESYSCLOUD_OAUTHCLIENT_ID": emulator.client_id,
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": emulator.client_secret,
    }


def _write_file(block: Block, work: Path, home: Path) -> None:
    """A ``file=`` block: the reader saves it before going on."""
    name = str(block.file_name)
    target = home / name[2:] if name.startswith("~/") else work / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(block.body, encoding="utf-8")
    target.chmod(0o600)  # as the docs tell users to do with files that may hold secrets


def _run_block(block: Block, shell: Shell, n: int) -> None:
    if block.lang == "console":
        found = commands(block)
        assert found, f"{block.id}: a console block with no '$ ' command (use `text` or `sh`)"
        for command in found:
            ran = shell.run(command.text)
            where = f"{block.doc}:{command.line}: $ {command.text}"
            assert ran.code == command.expect_code, (
                f"{where}\nexpected exit {command.expect_code}\n{ran.show()}"
            )
            printed = flat(ran.stdout + "\n" + ran.stderr)
            for expected in command.expect_output:
                assert output_pattern(expected).search(printed), (
                    f"{where}\nshown in the doc but not printed: {expected.strip()!r}\n{ran.show()}"
                )
        return
    if block.lang == "python":
        script = shell.scratch_file(f"example{n}.py", block.body)
        ran = shell.run(f"python '{script}'")
    elif block.lang == "javascript":
        # From standard input, so that its imports resolve from the reader's folder.
        script = shell.scratch_file(f"example{n}.mjs", block.body)
        ran = shell.run(f"node --input-type=module < '{script}'")
    else:
        script = shell.scratch_file(f"example{n}.sh", block.body)
        ran = shell.run(f"bash '{script}'")
    assert ran.code == 0, f"{block.id}\n{ran.show()}"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("doc", RUN_DOCS)
def test_walkthrough_runs_as_pasted(
    doc: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The document's examples, in order, in one fresh shell, do what the document says."""
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    (work / ".venv").symlink_to(VENV)
    (work / "clients").symlink_to(ROOT / "clients")
    env = _fresh_shell_env(home)
    if doc in REFERENCE_PAGES:
        env.update(_reference_env(request.getfixturevalue("emulator"), env["PATH"]))
    with Shell(work, env, tmp_path / "harness", COMMAND_TIMEOUT) as shell:
        for n, block in enumerate(b for b in BLOCKS if b.doc == doc):
            if block.file_name:
                _write_file(block, work, home)
            elif block.runs:
                try:
                    _run_block(block, shell, n)
                except ShellGone as gone:
                    pytest.fail(f"{block.id}: {gone}")


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
