"""Where a command's words go: results on stdout, everything said to a person on stderr.

A command's result (a conversation id, a status table, with ``--json`` one JSON document or one
JSON object per line) goes to stdout so that it can be piped; progress, warnings and errors go to
stderr through rich. rich honours ``NO_COLOR`` and drops colour when the stream is not a terminal.
rich is imported when something is first said through it, not before: a ``--json`` run that only
writes JSON never loads it, and a line for a pipe or a file that rich would write as its bare text
is written directly (:func:`plain_line`), so a plain ``gcdial call`` does not load it (start-up).

Text written to a stream that is not a terminal (a pipe, a file, a log) is data: it is never
wrapped or cut at a width, and a table becomes plain tab-separated rows. When the reader of
stdout goes away (``gcdial ... | head``) the command ends quietly with :data:`PIPE_CLOSED_EXIT`,
the status a shell reports for a Unix tool ended by SIGPIPE.
"""

from __future__ import annotations

import builtins
import functools
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from gcdial.cli.exitcodes import ExitCode

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

OK_MARK = "✓"
FAIL_MARK = "✗"
WARN_MARK = "!"


def to_jsonable(value: Any) -> Any:
    """Turn pydantic models, dataclasses-like objects and containers into plain JSON values."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [to_jsonable(v) for v in value]
    return value


PIPE_CLOSED_EXIT = int(ExitCode.PIPE_CLOSED)
"""Exit status when the reader of our output went away: 128 + SIGPIPE, as for ``yes | head``."""


def reader_gone() -> NoReturn:
    """End the process quietly because the reader of stdout (or stderr) has gone away.

    Both streams are pointed at the null device first, so that nothing (Python's final flush
    included) tries to write to the closed pipe again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError, AttributeError):
            continue
    os.close(devnull)
    raise SystemExit(PIPE_CLOSED_EXIT)


def reader_went_away(exc: BaseException) -> bool:
    """Whether ``exc`` is a write to our stdout or stderr whose reader has gone away.

    A broken pipe can also come from a socket; only a closed standard stream counts here, and it
    is checked on the stream itself (a pipe whose reader left polls as an error on Linux/macOS).
    """
    if not isinstance(exc, BrokenPipeError):
        return False
    import select

    for stream in (sys.__stdout__, sys.__stderr__):
        if stream is None:
            continue
        try:
            poller = select.poll()
            poller.register(stream.fileno(), select.POLLOUT)
            events = poller.poll(0)
        except (OSError, ValueError, AttributeError):
            continue
        if any(mask & (select.POLLERR | select.POLLHUP) for _, mask in events):
            return True
    return False


@functools.cache
def _console_class() -> type[Console]:
    """A rich console whose closed pipe ends the run as every other closed pipe does."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich's default exits 1, which a script cannot tell from a failure.
            reader_gone()

    return _Console


def make_console(*, stderr: bool) -> Console:
    """The one place consoles are made: never wrapping or cutting when not writing to a terminal."""
    console_class = _console_class()
    console = console_class(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        # A pipe or a file: rich would otherwise assume 80 columns and wrap or crop data.
        console = console_class(stderr=stderr, highlight=False, soft_wrap=True, width=1_000_000)
    return console


def plain_rows(table: Table) -> str:
    """A table as tab-separated rows for a pipe or a file: its title line, header, then rows."""
    columns = [[cell_text(cell) for cell in column.cells] for column in table.columns]
    lines = ["\t".join(row) for row in zip(*columns, strict=True)]
    if table.show_header:
        lines.insert(0, "\t".join(cell_text(column.header) for column in table.columns))
    if table.title:
        lines.insert(0, cell_text(table.title))
    return "".join(line + "\n" for line in lines)


def cell_text(cell: object) -> str:
    """The text of a table cell without styling; a cell never spans lines in plain rows."""
    from rich.text import Text

    text = cell.plain if isinstance(cell, Text) else str(cell)
    return " ".join(text.split())


# Settings with which rich may treat a pipe as a terminal, or style what it writes there.
_RICH_TERMINAL_SETTINGS = (
    "FORCE_COLOR",
    "FORCE_TERMINAL",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "JUPYTER_COLUMNS",
    "JUPYTER_LINES",
)
# The control characters rich's Text drops: bell, backspace, vertical tab, form feed, CR.
_DROPPED_CONTROLS = dict.fromkeys((7, 8, 11, 12, 13))


def bare_stream(stream: Any) -> bool:
    """Whether rich writes its bare text to ``stream``: not a terminal, and nothing says otherwise.

    Conservative: anywhere rich could decide differently (Windows, IDLE, Jupyter, a setting that
    forces colour or a terminal) the answer is no, and lines go through rich.
    """
    if sys.platform == "win32" or "idlelib" in sys.modules or hasattr(builtins, "get_ipython"):
        return False
    if any(name in os.environ for name in _RICH_TERMINAL_SETTINGS):
        return False
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return False


def plain_line(parts: Sequence[str]) -> str | None:
    """What rich prints for the text ``parts`` on a stream of :func:`bare_stream`; None: ask rich.

    rich drops a few control characters and ends the line; a tab it expands by display width,
    which only rich knows, so a text with a tab is left to rich.
    """
    text = "".join(parts).translate(_DROPPED_CONTROLS)
    return None if "\t" in text else text + "\n"


class Output:
    """The two streams of one command run, in human or ``--json`` mode."""

    def __init__(self, *, json_mode: bool = False) -> None:
        self.json_mode = json_mode

    @functools.cached_property
    def err(self) -> Console:
        """The console on stderr, made on first use."""
        return make_console(stderr=True)

    @functools.cached_property
    def out(self) -> Console:
        """The console on stdout, made on first use."""
        return make_console(stderr=False)

    @property
    def interactive(self) -> bool:
        """Whether a person is watching stderr (spinners and live views only then)."""
        return self.err.is_terminal

    def data(self, value: Any) -> None:
        """Write ``value`` as one line of JSON on stdout (a document, or one event of a stream)."""
        sys.stdout.write(json.dumps(to_jsonable(value), ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()

    def result(self, value: Any, human: RenderableType | None = None) -> None:
        """Print a command's result: ``value`` as JSON in ``--json`` mode, else ``human``."""
        if self.json_mode:
            self.data(value)
        elif human is not None:
            self.show(human)

    def show(self, human: RenderableType) -> None:
        """Print a human view on stdout; a table is plain rows when stdout is not a terminal."""
        from rich.table import Table

        if isinstance(human, Table) and not self.out.is_terminal:
            sys.stdout.write(plain_rows(human))
            sys.stdout.flush()
        else:
            self.out.print(human)

    def say(self, message: str, *, style: str | None = None) -> None:
        """Tell the person something (stderr), literally: no rich markup is interpreted."""
        self._line([message], lambda text: text(message, style=style or ""))

    def ok(self, message: str) -> None:
        """Report a step that worked."""
        self._line(
            [OK_MARK + " ", message], lambda text: text.assemble((OK_MARK + " ", "green"), message)
        )

    def warn(self, message: str) -> None:
        """Report something the person should look at, which did not stop the command."""
        self._line(
            [WARN_MARK + " ", message],
            lambda text: text.assemble((WARN_MARK + " ", "yellow"), message),
        )

    def fail(self, message: str) -> None:
        """Report the error that ends the command."""
        self._line(
            ["error: ", message], lambda text: text.assemble(("error: ", "bold red"), message)
        )

    @functools.cached_property
    def _bare_err(self) -> bool:
        return "err" not in self.__dict__ and bare_stream(sys.stderr)

    def _line(self, parts: Sequence[str], styled: Callable[[type[Text]], Text]) -> None:
        """One line on stderr: ``styled(Text)`` printed by rich, or the bare ``parts`` as rich
        would write them (:func:`plain_line`) without loading it."""
        line = plain_line(parts) if self._bare_err else None
        if line is None:
            from rich.text import Text

            self.err.print(styled(Text))
            return
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except BrokenPipeError:
            reader_gone()  # as rich's console does (make_console)
