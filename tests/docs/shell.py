"""One bash session that a document's examples are pasted into, one after the other.

A reader follows a walkthrough in one terminal: a ``cd``, a variable or a server started in the
background by one command is still there for the next. So the doc tests keep one ``bash`` alive
per document and feed it each command, rather than a new shell per command with its state
carried over by hand (which let examples depend on things no reader's shell has).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType


@dataclass(frozen=True)
class Ran:
    """What one pasted command did: its exit status and what it printed."""

    code: int
    stdout: str
    stderr: str

    def show(self) -> str:
        """For a failure message."""
        return f"exit {self.code}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


class ShellGone(Exception):
    """The session ended (an example ran ``exit``, or timed out and was ended)."""


class Shell:
    """A ``bash`` session in ``cwd`` with exactly ``env``; commands run in it in order.

    Each command is written to a file and sourced, so it runs in the session itself (its ``cd``
    and variables stay) with its own output captured; the harness's files live in ``scratch``,
    outside the reader's working directory.
    """

    def __init__(self, cwd: Path, env: dict[str, str], scratch: Path, timeout: float) -> None:
        self._scratch = scratch
        self._timeout = timeout
        self._count = 0
        scratch.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )

    def __enter__(self) -> Shell:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def scratch_file(self, name: str, text: str) -> Path:
        """A file for the harness (a Python example, a script), outside the reader's folder."""
        path = self._scratch / name
        path.write_text(text, encoding="utf-8")
        return path

    def run(self, command: str) -> Ran:
        """Paste ``command`` into the session and wait for it; its output is captured."""
        self._count += 1
        n = self._count
        script = self.scratch_file(f"cmd{n}.sh", command + "\n")
        out, err, rc = (self._scratch / f"{n}.{kind}" for kind in ("out", "err", "rc"))
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(
                f". '{script}' > '{out}' 2> '{err}' < /dev/null\n"
                f"echo $? > '{rc}.tmp' && mv '{rc}.tmp' '{rc}'\n"
            )
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise ShellGone("the shell had already ended") from None
        deadline = time.monotonic() + self._timeout
        while not rc.exists():
            if self._proc.poll() is not None:
                raise ShellGone(f"the shell ended (exit {self._proc.returncode}):\n{command}")
            if time.monotonic() > deadline:
                self.close()
                raise ShellGone(f"timed out after {self._timeout:g} s:\n{command}\n{_read(out)}")
            time.sleep(0.05)
        return Ran(int(rc.read_text().strip()), _read(out), _read(err))

    def close(self) -> None:
        """End the session and everything it started (a server left running would outlive the
        test)."""
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
