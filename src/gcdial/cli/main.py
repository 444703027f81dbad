"""Entry point of ``gcdial``: start-up and exit, around typer's command or the fast path.

The command itself is :mod:`gcdial.cli.app`. A plain ``gcdial call`` (the forms
:mod:`gcdial.cli.fastpath` reads) runs without typer; anything else (help, another command, a
typo, an unusual form) goes to typer, so its answers stay typer's.
"""

import atexit
import gc
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any


def command(args: Sequence[str] | None = None) -> Any:
    """The ``gcdial`` command as click runs it (:func:`gcdial.cli.app.command`)."""
    from gcdial.cli.app import command as built

    return built(args)


def run() -> None:
    """Console-script entry point; the last guard against a traceback reaching the user.

    A reader that went away (``gcdial ... | head``) ends the run quietly, wherever it is noticed:
    in a command body (:func:`gcdial.cli.session.session`), here, or at the final flush.
    """
    from gcdial.cli.output import reader_gone, reader_went_away

    _skip_unused_imports()
    _pause_collection_during_start_up()
    _skip_exit_collection()
    try:
        from gcdial.cli.fastpath import plain_call

        plain = plain_call(sys.argv[1:])
        if plain is not None:
            plain()
        command()(prog_name="gcdial")
    except SystemExit as done:
        _flush_or_quit()
        if isinstance(done.code, int | None):
            _leave_without_teardown(done.code or 0)
        raise done from None
    except BaseException as exc:
        if reader_went_away(exc):
            reader_gone()
        from gcdial.cli.errors import report
        from gcdial.cli.output import Output

        sys.exit(int(report(exc, Output())))


def _skip_unused_imports() -> None:
    """For start-up time: keep two libraries from loading what the command line never uses.

    httpx imports its own command line (click, rich.progress, pygments: ~15 ms) when it can, and
    falls back to a stub when that import fails. pydantic scans every installed distribution for
    plugins (~12 ms) at the first model it builds, unless its public setting
    ``PYDANTIC_DISABLE_PLUGINS`` says there are none to load; gcdial uses none. A value already
    set wins. Nothing here reaches into pydantic: should a release drop the setting, plugins are
    scanned (slower), and nothing breaks.
    """
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


# How long the cyclic garbage collector rests while gcdial starts (see below).
START_UP_S = 1.0


def _pause_collection_during_start_up() -> None:
    """For run time: no cyclic garbage collection while gcdial starts, for ``START_UP_S``.

    Start-up creates tens of thousands of objects that live as long as the process (modules,
    classes, functions, the validators of typer and pydantic); the collector walks them again and
    again as they pile up, finds nothing to free, and that is ~10% of one ``gcdial call``'s CPU.
    Reference counting frees everything else as usual meanwhile. Collection resumes by itself
    after ``START_UP_S`` (a timer), so a long run (a campaign, the service, a followed call)
    collects as it always did; a one-call run is over by then. A collector that was already
    disabled (by the program that called :func:`run`) is left alone.
    """
    if not gc.isenabled():
        return
    gc.disable()
    resume = threading.Timer(START_UP_S, gc.enable)
    resume.daemon = True
    resume.start()


def _skip_exit_collection() -> None:
    """For run time: spare the process the garbage collection Python does as it exits.

    When the interpreter shuts down it walks every object still alive in search of reference
    cycles: ~50 ms of CPU for one ``gcdial call``, a sixth of its whole run, to free memory the
    operating system takes back anyway. :func:`gc.freeze`, called at exit, takes the objects out
    of the collector's view. Nothing of gcdial waits on that collection: files, journals, HTTP
    clients and event loops are closed where they are used, and the logging handlers are flushed
    by :func:`logging.shutdown` at exit as usual. Done at exit, not now, so that a process that
    calls :func:`run` and goes on (a test) keeps collecting as before.
    """
    global _exit_collection_skipped
    if not _exit_collection_skipped:
        atexit.register(gc.freeze)
        _exit_collection_skipped = True


_exit_collection_skipped = False


def _leave_without_teardown(code: int) -> None:
    """For run time: end the process as Python would, less the teardown of the interpreter.

    After the exit hooks, Python frees every module, class and function one by one (~12 ms of
    one ``gcdial call``'s CPU) for memory the operating system takes back anyway. This does
    what a normal exit does before that, in the same order, and then ends the process with
    ``code``: it runs every exit hook (:mod:`atexit`: logging's flush and close, gcdial's and
    the caller's own) and flushes stdout and stderr. Files, journals, HTTP clients and event
    loops are closed where gcdial uses them, never left to the teardown. It returns, and the
    exit is the usual one, when a thread that is not a daemon still runs (a normal exit waits
    for it) or when a stream cannot be flushed (that path already knows what to do).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    run_exit_hooks = getattr(atexit, "_run_exitfuncs", None)  # CPython's, long-standing
    if run_exit_hooks is None or not _flushed():
        return
    run_exit_hooks()  # after this the usual exit would run them again: no way back
    _flushed()  # what the hooks wrote (logging's last lines); nothing more to do if it fails
    os._exit(code)


def _flushed() -> bool:
    """Flush stdout and stderr; False when one cannot be (the usual exit knows what to do)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            return False
    return True


def _flush_or_quit() -> None:
    """Flush stdout now, so that a closed pipe is noticed here rather than at interpreter exit."""
    from gcdial.cli.output import reader_gone

    try:
        sys.stdout.flush()
    except BrokenPipeError:
        reader_gone()
