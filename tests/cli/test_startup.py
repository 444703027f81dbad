"""What one ``gcdial call`` loads and does besides placing the call (issues 9 and 21: CPU cost).

Structural guards, not timings: the bench (``make bench ARGS=one_call``) measures the time; these
tests fail when a change brings back a library the plain call path had shed (the event loop and
anyio's asyncio backend, the monitor, rich, ...), or the garbage collections it skips at start-up
and at exit, so the gain cannot slip away unnoticed.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcdial.cli import app as cli_app
from gcdial.cli import main
from gcdial.emulator import EmulatorServer

from .helpers import ALICE, ALICE_ID, ANSWERS, emulator_env

# Run gcdial's entry point as the console script does, and at exit (after gcdial's own exit
# hooks, which run first) record what was imported and whether the heap was frozen.
_PROBE = textwrap.dedent(
    """
    import atexit, gc, json, os, sys

    def record():
        with open(os.environ["PROBE_REPORT"], "w") as out:
            loaded = sorted(name for name, module in sys.modules.items() if module is not None)
            json.dump(
                {"modules": loaded, "frozen": gc.get_freeze_count(), "collecting": gc.isenabled()},
                out,
            )

    atexit.register(record)
    sys.argv[0] = "gcdial"
    from gcdial.cli import main
    main.START_UP_S = 3600.0  # so "collecting" at exit does not depend on how long the run took
    main.run()
    """
)

# Loaded by no plain call: the human views (rich), what only other commands need, httpx's command
# line, what only an event loop needs (a call that is not followed is placed with plain requests,
# dialing.dial_sync: asyncio, anyio's asyncio backend and the monitor never load), and the config
# file's parser when there is no config file.
_NOT_ON_THE_CALL_PATH = (
    "rich",
    "httpx._main",
    "asyncio",
    "tomllib",
    "anyio._backends",
    "anyio._core",
    "sniffio",
    "gcdial.monitor",
    "gcdial.tokenstore",
    "click",
    "pygments",
    "websockets",
    "gcdial.emulator",
    # A call asks the campaigns' own calling rules (gcdial.campaign.rules and its contact: the
    # window in the number's zone), and nothing else of campaigns: the CSV reader (csvinput) only
    # with --dnc, whose parser it lends.
    "gcdial.campaign.csvinput",
    "gcdial.campaign.runner",
    "gcdial.campaign.journal",
    "gcdial.campaign.pacing",
    "gcdial.campaign.report",
    "gcdial.campaign.settings",
    "gcdial.serve",
    "gcdial.monitor.follow",
    "gcdial.cli.campaign_cmd",
    "gcdial.cli.watch_cmd",
    # typer itself: a plain call's command line is read without it (gcdial.cli.fastpath); and, for
    # the command lines typer reads, its conversion of values through pydantic TypeAdapters
    # (gcdial reads plain values itself: app._SimpleValues).
    "typer",
    "pydantic.type_adapter",
)


def _open_window() -> str:
    """A calling window that is open now for the test numbers (California), whatever the hour
    the suite runs at, and not "any hour": the call loads and asks the rules as a user's does."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    local = datetime.now(UTC).astimezone(ZoneInfo("America/Los_Angeles"))
    start = local - timedelta(hours=1)
    return f"{start:%H}:00-{start + timedelta(hours=3):%H}:00"


def _probe(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[dict[str, object], str]:
    report = tmp_path / "probe.json"
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "NO_COLOR": "1",
            "PROBE_REPORT": str(report),
            "GCDIAL_CALLING_WINDOW": _open_window(),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(report.read_text()), proc.stdout


@pytest.mark.parametrize(
    "agent_args",
    [["--agent", ALICE], ["--agent", ALICE_ID, "--no-check"]],
    ids=["checks-the-agent", "no-check"],
)
def test_a_json_call_loads_only_what_it_needs(
    tmp_path: Path, emulator: EmulatorServer, agent_args: list[str]
) -> None:
    seen, out = _probe(tmp_path, emulator_env(emulator), "call", ANSWERS, *agent_args, "--json")
    assert json.loads(out)["placed"] is True  # the call really went through this path
    modules = set(seen["modules"])  # type: ignore[call-overload]
    assert {"gcdial.calls", "httpx", "pydantic"} <= modules  # the probe sees real imports
    loaded = sorted(
        name
        for name in modules
        if any(name == bad or name.startswith(bad + ".") for bad in _NOT_ON_THE_CALL_PATH)
    )
    assert loaded == []
    assert seen["frozen"], "the exit-time garbage collection is back (gc.freeze at exit)"
    assert not seen["collecting"], "start-up garbage collection is back (main.START_UP_S)"


def test_collection_resumes_after_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # A long run (a campaign, the service) collects as always once start-up is over.
    import gc
    import time

    monkeypatch.setattr(main, "START_UP_S", 0.05)
    assert gc.isenabled()
    try:
        main._pause_collection_during_start_up()
        assert not gc.isenabled()
        deadline = time.monotonic() + 30
        while not gc.isenabled() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gc.isenabled()
    finally:
        gc.enable()


def test_a_collector_disabled_by_the_caller_stays_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    import threading

    monkeypatch.setattr(main, "START_UP_S", 0.0)
    gc.disable()
    try:
        main._pause_collection_during_start_up()
        for thread in threading.enumerate():
            if isinstance(thread, threading.Timer):
                thread.join(5)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_human_call_still_says_it_through_rich(tmp_path: Path, emulator: EmulatorServer) -> None:
    # The counterpart: without --json, rich is loaded on first use and says what happened.
    seen, out = _probe(tmp_path, emulator_env(emulator), "call", ANSWERS, "--agent", ALICE)
    assert "rich.console" in seen["modules"]  # type: ignore[operator]
    assert out.strip()  # the conversation id


# Letters, spaces, every control character rich treats specially, markup and emoji look-alikes,
# combining, wide, zero-width and separator characters.
_TEXT = st.text(
    alphabet="aZ \t\n\r\x07\x08\x0b\x0c\x1b\x00\x7f[]:"
    "\u00e9\u0301\u6f22\U0001f600\u200b\u2713\u2028",
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(_TEXT, min_size=1, max_size=3))
def test_a_bare_line_is_what_rich_writes_to_a_pipe(parts: list[str]) -> None:
    from rich.text import Text

    from gcdial.cli.output import make_console, plain_line

    line = plain_line(parts)
    if line is None:  # rich's to write (a tab)
        assert "\t" in "".join(parts)
        return
    pipe = io.StringIO()
    console = make_console(stderr=True)  # as Output makes it, for a stream that is no terminal
    console.file = pipe
    assert not console.is_terminal
    console.print(Text.assemble(*[(part, "bold red") for part in parts]))
    assert line == pipe.getvalue()


@pytest.mark.parametrize("setting", ["FORCE_COLOR", "TTY_COMPATIBLE", "FORCE_TERMINAL"])
def test_settings_that_make_rich_style_a_pipe_leave_the_line_to_rich(
    monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    from gcdial.cli.output import bare_stream

    pipe = io.StringIO()
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    assert bare_stream(pipe)
    monkeypatch.setenv(setting, "1")
    assert not bare_stream(pipe)


def test_stderr_lines_through_a_pipe_need_no_rich(tmp_path: Path) -> None:
    # ok/warn/say/fail on a pipe, in a fresh process: the words arrive, rich is not loaded.
    code = textwrap.dedent(
        """
        import sys
        from gcdial.cli.output import Output
        out = Output()
        out.ok("placed"); out.warn("look"); out.say("note", style="dim"); out.fail("bad\\rnews")
        print(",".join(m for m in sys.modules if m == "rich" or m.startswith("rich.")))
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert proc.stdout.strip() == ""
    assert proc.stderr == "✓ placed\n! look\nnote\nerror: badnews\n"


# Values typer reads for a str, float or list[str] parameter: plain ones, and every kind the plain
# reading leaves to typer (signs, exponents, spaces, words, other digits, nothing at all).
_VALUE = st.one_of(
    st.text(alphabet="0123456789.+-eE_ infa\u0663\u00b2x", max_size=8),
    st.from_regex(r"[0-9]{1,4}(\.[0-9]{0,3})?", fullmatch=True),
    st.sampled_from(["", ".", ".5", "5.", "1e3", "inf", "nan", " 1", "1 ", "0x10", "1_0"]),
)


def _typers_own_and_ours(kind: str) -> tuple[object, object, object]:
    """A parameter of ``kind`` in a built command, typer's own conversion of it, and ours."""
    import typer
    from typer._coercion import build_runtime_param

    app = typer.Typer()
    annotation = {"str": str, "float": float, "list[str]": list[str]}[kind]

    def probe(value: object = typer.Option(None, "--value")) -> None:
        del value

    probe.__annotations__ = {"value": annotation, "return": None}  # the kind under test
    app.command()(probe)
    built = typer.main.get_command(app)
    cli_app._read_values_simply(built)
    (param,) = [p for p in built.params if p.name == "value"]
    param._parent = built  # type: ignore[attr-defined]  # for a context in _outcome
    ours = param._runtime_param  # type: ignore[attr-defined]
    assert isinstance(ours, cli_app._SimpleValues)
    return param, build_runtime_param(param.type_descriptor), ours  # type: ignore[attr-defined]


def _outcome(runtime: object, value: object, param: object) -> tuple[str, object]:
    import typer

    ctx = typer.Context(param._parent)  # type: ignore[attr-defined]
    try:
        return "value", runtime.coerce(value, param=param, ctx=ctx)  # type: ignore[attr-defined]
    except Exception as exc:  # the same error, with the same words
        return type(exc).__name__, str(exc)


@settings(max_examples=150, deadline=None)
@given(text=_VALUE, kind=st.sampled_from(["str", "float"]))
def test_plain_values_read_as_typer_reads_them(text: str, kind: str) -> None:
    param, typers, ours = _typers_own_and_ours(kind)
    for value in (text, None, 2.5):
        mine, theirs = _outcome(ours, value, param), _outcome(typers, value, param)
        assert repr(mine) == repr(theirs)  # repr: nan is nan
        assert type(mine[1]) is type(theirs[1])


@settings(max_examples=50, deadline=None)
@given(items=st.lists(_VALUE, max_size=3))
def test_repeated_values_read_as_typer_reads_them(items: list[str]) -> None:
    param, typers, ours = _typers_own_and_ours("list[str]")
    for value in (tuple(items), items, None, "one"):
        assert _outcome(ours, value, param) == _outcome(typers, value, param)


def test_an_unplain_value_gets_typers_own_words(tmp_path: Path) -> None:
    # A value the plain reading leaves to typer still gets typer's message and exit code.
    proc = subprocess.run(
        [sys.executable, "-c", "from gcdial.cli.main import run; run()", "call", ANSWERS,
         "--agent", ALICE_ID, "--wait", "--timeout", "soon"],
        capture_output=True, text=True, timeout=45, check=False,
        env={**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "c")},
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Invalid value for '--timeout'" in proc.stderr
    assert "soon" in proc.stderr or "number" in proc.stderr


_EXIT_PROBE = textwrap.dedent(
    """
    import atexit, logging, os, sys, threading

    log = logging.getLogger("probe")
    log.addHandler(logging.FileHandler(os.environ["PROBE_LOG"]))
    log.warning("buffered until logging shuts down")
    atexit.register(lambda: open(os.environ["PROBE_REPORT"], "w").write("exit hooks ran"))
    if os.environ.get("PROBE_THREAD"):
        stop = threading.Event()
        threading.Thread(target=stop.wait, args=(2.0,)).start()  # not a daemon: waited for
    sys.argv[0] = "gcdial"
    sys.stdout.write("unflushed")
    from gcdial.cli import main
    main.run()
    """
)


@pytest.mark.parametrize("thread", ["", "1"], ids=["alone", "with-a-thread"])
@pytest.mark.parametrize(("args", "code"), [(["--version"], 0), (["call", "12"], 2)])
def test_the_exit_keeps_what_a_normal_exit_does(
    tmp_path: Path, args: list[str], code: int, thread: str
) -> None:
    # gcdial leaves without tearing the interpreter down; exit hooks, logging's flush, buffered
    # output and the exit code are those of a normal exit, and a thread still running is waited for.
    report, log = tmp_path / "report", tmp_path / "log"
    proc = subprocess.run(
        [sys.executable, "-c", _EXIT_PROBE, *args],
        capture_output=True, text=True, timeout=45, check=False,
        env={**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "c"),
             "PROBE_REPORT": str(report), "PROBE_LOG": str(log), "PROBE_THREAD": thread},
    )  # fmt: skip
    assert proc.returncode == code, proc.stderr
    assert proc.stdout.startswith("unflushed")
    assert report.read_text() == "exit hooks ran"
    assert log.read_text() == "buffered until logging shuts down\n"
