"""Shared pieces of the benchmarks: timing subprocesses, peak memory, writing RESULTS.md."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent

# A child that runs a script and then reports its own peak RSS, so each measurement is one process.
_MEASURE = """
import resource, runpy, sys, json
sys.argv = sys.argv[1:]
code = 0
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
print("BENCH_RSS_KB=" + str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), file=sys.stderr)
sys.exit(code)
"""


@dataclass
class Run:
    """One measured child process."""

    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float = 0.0
    """User + system CPU of the child: steadier than wall time on a busy machine."""


def run_python(script: Path | str, *args: str, env: dict[str, str] | None = None) -> Run:
    """Run a Python script in a fresh interpreter; report wall time and that process's peak RSS."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    elapsed = time.perf_counter() - started
    rss_kb = 0
    kept = []
    for line in proc.stderr.splitlines():
        if line.startswith("BENCH_RSS_KB="):
            rss_kb = int(line.split("=", 1)[1])
        else:
            kept.append(line)
    return Run(elapsed, rss_kb / 1024, proc.returncode, proc.stdout, "\n".join(kept))


def run_command(argv: list[str], env: dict[str, str] | None = None) -> Run:
    """Run any command; wall time, and that child's own CPU time and peak RSS (from wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        return Run(elapsed, usage.ru_maxrss / 1024, proc.returncode, out.read(), err.read(), cpu)


def median(values: list[float]) -> float:
    """The median of a non-empty list."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass
class Section:
    """One benchmark's contribution to RESULTS.md."""

    title: str
    command: str
    table: list[list[str]]
    headers: list[str]
    notes: list[str] = field(default_factory=list)
    ok: bool = True

    def markdown(self, measured: str = "", load: str = "") -> str:
        """Render as a Markdown section; ``measured`` says when and ``load`` how busy the machine
        was (kept with the section, since a run of one benchmark rewrites only its own
        sections). A goal this run missed is said first."""
        when = f" (measured {measured})" if measured else ""
        lines = [f"## {self.title}", "", f"Re-run: `{self.command}`{when}", ""]
        if load:
            lines[-1:-1] = [f"Machine load: {load}."]
        if not self.ok:
            lines.extend(["**Goal not met in this run** (see the notes).", ""])
        lines.append("| " + " | ".join(self.headers) + " |")
        lines.append("|" + "---|" * len(self.headers))
        lines.extend("| " + " | ".join(row) + " |" for row in self.table)
        if self.notes:
            lines.append("")
            lines.extend(f"- {n}" for n in self.notes)
        lines.append("")
        return "\n".join(lines)


def load_average() -> str:
    """The machine's load average (1, 5 and 15 minutes) now, against its core count: figures
    taken on a shared machine are read with it."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


def machine_summary() -> str:
    """Where the figures were measured."""
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def dump_json(path: Path, data: object) -> None:
    """Write raw figures next to the report, for scripts."""
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def merge_sections(old: str, new: dict[str, str]) -> list[str]:
    """The sections of an existing RESULTS.md (``old``) with those named in ``new`` (title ->
    Markdown) replaced in place, and new titles appended: a run of some benchmarks keeps the
    others' figures."""
    blocks: list[str] = []
    left = dict(new)
    for block in old.split("\n## ")[1:]:
        title = block.split("\n", 1)[0].strip()
        blocks.append(left.pop(title) if title in left else "## " + block.rstrip("\n") + "\n")
    blocks.extend(left.values())
    return blocks
