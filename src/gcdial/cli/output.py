"""Where a command's words go: results on stdout, everything said to a person on stderr.

A command's result (a conversation id, a status table, with ``--json`` one JSON document or one
JSON object per line) goes to stdout so that it can be piped; progress, warnings and errors go to
stderr through rich. rich honours ``NO_COLOR`` and drops colour when the stream is not a terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, RenderableType
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


class Output:
    """The two streams of one command run, in human or ``--json`` mode."""

    def __init__(self, *, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self.out = Console(highlight=False)

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
            self.out.print(human)

    def say(self, message: str, *, style: str | None = None) -> None:
        """Tell the person something (stderr), literally: no rich markup is interpreted."""
        self.err.print(Text(message, style=style or ""))

    def ok(self, message: str) -> None:
        """Report a step that worked."""
        self.err.print(Text.assemble((OK_MARK + " ", "green"), message))

    def warn(self, message: str) -> None:
        """Report something the person should look at, which did not stop the command."""
        self.err.print(Text.assemble((WARN_MARK + " ", "yellow"), message))

    def fail(self, message: str) -> None:
        """Report the error that ends the command."""
        self.err.print(Text.assemble(("error: ", "bold red"), message))
