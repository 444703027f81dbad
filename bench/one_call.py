"""One call, end to end: `gcdial call` vs a tutorial `requests` script vs the official SDK.

All three place the same call on behalf of the same agent against the same in-process emulator,
each in a fresh process, in the same run. Reported: wall time, the process's peak memory, and the
HTTP requests it made (counted by the emulator).
"""

from __future__ import annotations

import os

from bench._harness import BENCH_DIR, VENV_BIN, Run, Section, median, run_command

REPEATS = 5
GOAL_RATIO = 3.0
AGENT_EMAIL = "alice@example.com"
AGENT_ID = "11111111-1111-4111-8111-111111111111"
NUMBER = "+14155550100"


def _measure(
    emu: object, cases: list[tuple[str, list[str]]], env: dict[str, str]
) -> list[tuple[list[Run], float]]:
    """Each case REPEATS times, taking turns (one run of each case per round).

    Round by round, so that a machine getting busier or quieter during the run weighs on every
    case alike instead of on whichever case happened to run then.
    """
    from gcdial.emulator import EmulatorServer

    assert isinstance(emu, EmulatorServer)
    runs: list[list[Run]] = [[] for _ in cases]
    requests_made: list[list[float]] = [[] for _ in cases]
    for _ in range(REPEATS):
        for index, (_, argv) in enumerate(cases):
            before = emu.request_counts()["total"]
            run = run_command(argv, env=env)
            if run.returncode != 0:
                raise RuntimeError(f"{argv[0]} exited {run.returncode}: {run.stderr[-400:]}")
            requests_made[index].append(emu.request_counts()["total"] - before)
            runs[index].append(run)
    return [(case_runs, median(made)) for case_runs, made in zip(runs, requests_made, strict=True)]


def run() -> list[Section]:
    """Measure the three ways of placing one call."""
    import compileall

    import gcdial as package
    from gcdial.emulator import EmulatorConfig, EmulatorServer

    # Byte-compile gcdial first, as installing a wheel does. The libraries it is compared with
    # were installed compiled; an editable checkout run with PYTHONDONTWRITEBYTECODE=1 (CI, this
    # machine) would otherwise compile every gcdial module from source in every run (~50 ms).
    compileall.compile_dir(os.path.dirname(package.__file__), quiet=1)

    python = str(VENV_BIN / "python")
    gcdial = str(VENV_BIN / "gcdial")
    scripts = BENCH_DIR / "scripts"
    with EmulatorServer(EmulatorConfig(admin=True, speed=1000.0)) as emu:
        env = {
            "BENCH_BASE_URL": emu.base_url,
            "BENCH_CLIENT_ID": emu.client_id,
            "BENCH_CLIENT_SECRET": emu.client_secret,
            "GCDIAL_BASE_URL": emu.base_url,
            "GENESYSCLOUD_OAUTHCLIENT_ID": emu.client_id,
            "GENESYSCLOUD_OAUTHCLIENT_SECRET": emu.client_secret,
            "GENESYSCLOUD_REGION": "",
            "GENESYSCLOUD_ACCESS_TOKEN": "",
            "HOME": os.environ.get("BENCH_HOME", "/tmp/gcdial-bench-home"),
            "XDG_CONFIG_HOME": "/tmp/gcdial-bench-home/.config",
            "NO_COLOR": "1",
        }
        cases = [
            (
                "tutorial script (requests), baseline",
                [python, str(scripts / "tutorial_call.py"), AGENT_ID, NUMBER],
            ),
            (
                "official SDK (PureCloudPlatformClientV2)",
                [python, str(scripts / "sdk_call.py"), AGENT_ID, NUMBER],
            ),
            (
                "gcdial call --agent EMAIL (checks the agent)",
                [gcdial, "call", NUMBER, "--agent", AGENT_EMAIL, "--json"],
            ),
            (
                "gcdial call --agent ID --no-check",
                [gcdial, "call", NUMBER, "--agent", AGENT_ID, "--no-check", "--json"],
            ),
        ]
        results = [
            (
                label,
                median([r.seconds for r in runs]),
                median([r.cpu_seconds for r in runs]),
                median([r.peak_rss_mb for r in runs]),
                reqs,
            )
            for (label, _), (runs, reqs) in zip(cases, _measure(emu, cases, env), strict=True)
        ]
    base_s, base_cpu, base_mb = results[0][1], results[0][2], results[0][3]
    rows = [
        [
            label,
            f"{seconds * 1000:.0f} ms",
            f"{seconds / base_s:.2f}x",
            f"{cpu * 1000:.0f} ms",
            f"{cpu / base_cpu:.2f}x",
            f"{mb:.0f} MB",
            f"{mb / base_mb:.2f}x",
            f"{reqs:.0f}",
        ]
        for label, seconds, cpu, mb, reqs in results
    ]
    # The goal (issue 9): one `gcdial call` within 3x the bare script, in wall and CPU time.
    worst = max(max(s / base_s, c / base_cpu) for label, s, c, _, _ in results if "gcdial" in label)
    return [
        Section(
            title="One call: gcdial vs tutorial script vs official SDK",
            command="make bench ARGS=one_call",
            headers=[
                "way",
                f"wall (median of {REPEATS})",
                "vs baseline",
                "CPU user+sys",
                "vs baseline",
                "peak RSS",
                "vs baseline",
                "HTTP requests",
            ],
            table=rows,
            ok=worst <= GOAL_RATIO,
            notes=[
                f"Goal: gcdial within {GOAL_RATIO:g}x the baseline in wall and CPU time "
                f"(worst here {worst:.2f}x). CPU time is the steadier figure on a busy machine.",
                "Same in-process emulator, same agent and number, each run a fresh process; the "
                f"ways take turns ({REPEATS} rounds of one run each); gcdial byte-compiled "
                "first, as an installed wheel is.",
                "gcdial's extra requests with --agent EMAIL are the e-mail lookup and the station "
                "check that turn a silent non-dial into a clear error before anything rings.",
            ],
        )
    ]
