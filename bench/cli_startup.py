"""CLI start-up time: `gcdial --help` and `import gcdial`, against a bare interpreter start."""

from __future__ import annotations

import sys

from bench._harness import VENV_BIN, Section, median, run_command

REPEATS = 7


def _time(argv: list[str]) -> float:
    runs = [run_command(argv, env={"COLUMNS": "120", "NO_COLOR": "1"}) for _ in range(REPEATS)]
    bad = [r for r in runs if r.returncode != 0]
    if bad:
        raise RuntimeError(f"{' '.join(argv)} exited {bad[0].returncode}: {bad[0].stderr[-300:]}")
    return median([r.seconds for r in runs])


def run() -> list[Section]:
    """Median of several cold starts each; ratios against `python -c pass`."""
    baseline = _time([sys.executable, "-c", "pass"])
    rows = []
    for label, argv in [
        ("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
        ("python -c 'import gcdial'", [sys.executable, "-c", "import gcdial"]),
        (
            "python -c 'import gcdial; gcdial.Client'",
            [sys.executable, "-c", "import gcdial; gcdial.Client"],
        ),
        ("gcdial --help", [str(VENV_BIN / "gcdial"), "--help"]),
        ("gcdial call --help", [str(VENV_BIN / "gcdial"), "call", "--help"]),
    ]:
        seconds = baseline if "baseline" in label else _time(argv)
        rows.append([label, f"{seconds * 1000:.0f} ms", f"{seconds / baseline:.1f}x"])
    return [
        Section(
            title="CLI start-up",
            command="make bench ARGS=cli_startup",
            headers=["command", f"median of {REPEATS}", "vs bare interpreter"],
            table=rows,
            notes=[
                "The official SDK's import alone takes about 1.9 s (see the one-call benchmark)."
            ],
        )
    ]
