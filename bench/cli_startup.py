"""CLI start-up time: `gcdial --help` and `import gcdial`, against a bare interpreter start."""

from __future__ import annotations

import importlib.util
import sys

from bench._harness import VENV_BIN, Section, median, run_command

REPEATS = 7


def _time(argv: list[str]) -> float:
    runs = [run_command(argv, env={"COLUMNS": "120", "NO_COLOR": "1"}) for _ in range(REPEATS)]
    bad = [r for r in runs if r.returncode != 0]
    if bad:
        raise RuntimeError(f"{' '.join(argv)} exited {bad[0].returncode}: {bad[0].stderr[-300:]}")
    return median([r.seconds for r in runs])


def _sdk_case() -> list[tuple[str, list[str]]]:
    """The official SDK's import, for scale, when the bench extra installed it."""
    if importlib.util.find_spec("PureCloudPlatformClientV2") is None:
        return []
    code = "import PureCloudPlatformClientV2"
    return [(f"python -c '{code}' (official SDK)", [sys.executable, "-c", code])]


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
        *_sdk_case(),
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
                "`gcdial --help` imports no HTTP, model or emulator code: each command imports "
                "what it needs when it runs."
            ],
        )
    ]
