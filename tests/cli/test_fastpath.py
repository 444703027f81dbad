"""``gcdial call`` read without typer (gcdial.cli.fastpath) means what typer reads (issue 21).

The fast path reads the plain forms of a call's command line and leaves every other one to typer;
whichever reads it, :func:`gcdial.cli.placing.place` must get the same options. Checked here by
reading the same command lines both ways, in-process, with ``place`` replaced by a recorder.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcdial.cli import app as cli_app
from gcdial.cli import call_cmd, fastpath, placing
from gcdial.cli.local_gate import CALLING_WINDOW_ENV
from gcdial.emulator import EmulatorServer

from .helpers import ALICE_ID, ANSWERS, emulator_env

_PLACE = placing.place  # the real one, whose defaults the fast path leaves to it

_ROOT = st.lists(
    st.sampled_from(
        [["--json"], ["-v"], ["--verbose"], ["--sandbox"], ["--profile", "work"],
         ["--profile=home"], ["--region", "eu_west_1"], ["--base-url=http://127.0.0.1:9"],
         ["--client-id", "cid"]]
    ),
    max_size=3,
)  # fmt: skip
# (the option's name as place() gets it, its words)
_OPTIONS = st.lists(
    st.sampled_from(
        [("agent", ["--agent", "alice@example.com"]), ("agent", ["-a", ALICE_ID]),
         ("agent", [f"--agent={ALICE_ID}"]), ("from_number", ["--from", "+14155550199"]),
         ("from_name", ["--from-name=Clinic"]), ("queue", ["--queue", "q1"]),
         ("attr", ["--attr", "crm=1"]), ("attr", ["--attr=case=2"]), ("label", ["--label", "a b"]),
         ("uui", ["--uui", "x"]), ("no_check", ["--no-check"]), ("country", ["--country", "GB"]),
         ("dry_run", ["--dry-run"]), ("wait", ["--wait"]), ("timeout", ["--timeout", "5"]),
         ("timeout", ["--timeout=2.5"]), ("wrapup_timeout", ["--wrapup-timeout", "0"]),
         ("hangup_after", ["--hangup-after", ".5"]),
         ("resolve_timeout", ["--resolve-timeout", "30."]),
         ("window", ["--window", "09:00-17:00"]), ("window", ["--window=00:00-24:00"]),
         ("any_hour", ["--any-hour"]), ("timezone", ["--timezone", "Europe/London"]),
         ("dnc", ["--dnc", "dnc.txt"]), ("json", ["--json"]), ("sandbox", ["--sandbox"]),
         ("verbose", ["-v"]), ("verbose", ["--verbose"])]
    ),
    max_size=7,
)  # fmt: skip


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    calls: list[tuple[Any, dict[str, Any]]] = []

    def record(options: Any, **given: Any) -> None:
        calls.append((options, given))

    monkeypatch.setattr(placing, "place", record)
    monkeypatch.setattr(call_cmd, "place", record)
    return calls


def _both(argv: list[str], calls: list[tuple[Any, dict[str, Any]]]) -> tuple[Any, Any] | None:
    """What place() gets from the fast path and from typer; None when the fast path declines."""
    plain = fastpath.plain_call(argv)
    if plain is None:
        return None
    with pytest.raises(SystemExit) as ended:
        plain()
    assert ended.value.code == 0
    cli_app.command(argv).main(argv, prog_name="gcdial", standalone_mode=False)
    assert len(calls) == 2
    (fast_options, fast), (typer_options, typers) = calls
    calls.clear()
    # typer passes every option; the fast path only those given, place's defaults the rest.
    defaults = {
        name: p.default
        for name, p in inspect.signature(_PLACE).parameters.items()
        if p.default is not p.empty
    }
    return (fast_options, {**defaults, **fast}), (typer_options, typers)


# The recorder is emptied after each reading (_both), so sharing it between examples is safe.
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    root=_ROOT, options=_OPTIONS, at=st.integers(0, 7), window=st.sampled_from(["", "8:30-20:00"])
)
def test_a_plain_call_reads_as_typer_reads_it(
    recorded: list[tuple[Any, dict[str, Any]]],
    root: list[list[str]],
    options: list[tuple[str, list[str]]],
    at: int,
    window: str,
) -> None:
    before = [word for _, option in options[:at] for word in option]
    after = [word for _, option in options[at:] for word in option]
    argv = [*(word for option in root for word in option), "call", *before, ANSWERS, *after]
    saved = os.environ.get(CALLING_WINDOW_ENV)
    os.environ[CALLING_WINDOW_ENV] = window
    try:
        both = _both(argv, recorded)
    finally:
        if saved is None:
            del os.environ[CALLING_WINDOW_ENV]
        else:
            os.environ[CALLING_WINDOW_ENV] = saved
    names = [name for name, _ in options]
    once = [name for name in names if name != "attr"]
    roots = [option[0].partition("=")[0] for option in root]
    plain = "agent" in names and len(once) == len(set(once)) and len(roots) == len(set(roots))
    plain = plain and not ({"--verbose", "-v"} <= set(roots))
    assert (both is not None) == plain, argv  # declined only for typer's own errors
    if both is not None:
        fast, typers = both
        assert fast == typers


@pytest.mark.parametrize(
    "argv",
    [
        ["call", "--help"],
        ["--help"],
        ["--version"],
        ["call", ANSWERS],  # no agent: typer's usage error
        ["call", ANSWERS, "--agent"],  # no value
        ["call", ANSWERS, "--agent", "a", "--agent", "b"],  # repeated
        ["call", ANSWERS, "-aalice"],  # joined short option
        ["call", ANSWERS, "--agent", "a", "-vq"],
        ["call", ANSWERS, "--age", "a"],  # abbreviated
        ["call", ANSWERS, "--agent", "a", "--timeout", "-1"],  # a value typer must read
        ["call", ANSWERS, "--agent", "a", "--timeout", "1e3"],
        ["call", ANSWERS, "--agent", "a", "--timeout", "inf"],
        ["call", ANSWERS, "--agent", "a", "--wait=yes"],
        ["call", ANSWERS, "--agent", "a", "--", "x"],
        ["call", ANSWERS, "+14155550101", "--agent", "a"],  # two numbers
        ["call", "--agent", "a", "-14155550100"],
        ["call", ANSWERS, "--agent="],
        ["--client-secret-file", "s", "call", ANSWERS, "--agent", "a"],
        ["--json", "status", "x"],
        ["calls", ANSWERS, "--agent", "a"],
        [],
    ],
)
def test_anything_else_is_typers_to_read(argv: list[str]) -> None:
    assert fastpath.plain_call(argv) is None


def _closed_window() -> str:
    """A calling window closed now for the test numbers (California)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    hour = (datetime.now(UTC).astimezone(ZoneInfo("America/Los_Angeles")).hour + 2) % 24
    return f"{hour:02d}:00-{hour:02d}:30"


@pytest.mark.parametrize(
    ("typers", "plain"),
    [
        (["-a" + ALICE_ID], ["--agent", ALICE_ID]),  # joined: typer reads it
        (["--agent", ALICE_ID, "--resolve-timeout", "1e2"],
         ["--agent", ALICE_ID, "--resolve-timeout", "100"]),
    ],
)  # fmt: skip
@pytest.mark.parametrize(
    ("number", "extra", "code"),
    [(ANSWERS, ["--window", "WINDOW"], 4), ("12", [], 2), (ANSWERS, ["--json", "--any-hour"], 0)],
)
def test_both_readings_end_alike(
    tmp_path: Path,
    emulator: EmulatorServer,
    typers: list[str],
    plain: list[str],
    number: str,
    extra: list[str],
    code: int,
) -> None:
    # The same call read by typer (an unusual form) and by the fast path (the plain form): the
    # same words and exit code, for a call refused by the calling window, a bad number, a call.
    extra = [_closed_window() if word == "WINDOW" else word for word in extra]
    ends = []
    for home, form in ((tmp_path / "typer", typers), (tmp_path / "plain", plain)):
        proc = subprocess.run(
            [sys.executable, "-c", "from gcdial.cli.main import run; run()", "call", number,
             *form, *extra],
            capture_output=True, text=True, timeout=45, check=False,
            env={**os.environ, **emulator_env(emulator), "HOME": str(home),
                 "XDG_CONFIG_HOME": str(home / "c")},  # each its own agent rows
        )  # fmt: skip
        ends.append((proc.returncode, proc.stderr, sorted(proc.stdout.split('"')[:2])))
    assert ends[0][0] == code, ends[0]
    assert ends[0] == ends[1]
