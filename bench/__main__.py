"""``make bench``: run every benchmark and write bench/RESULTS.md.

Each benchmark module exposes ``run() -> list[Section]``; a module that fails is reported as such
in the results instead of hiding the others.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import re
import sys
import time
import traceback

from bench._harness import BENCH_DIR, Section, load_average, machine_summary, merge_sections

MODULES = [
    "bench.one_call",
    "bench.monitor_requests",
    "bench.campaign",
    "bench.campaign_store",
    "bench.cli_startup",
    "bench.resolution",
    "bench.serve",
    "bench.budget",
]


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks (all by default) and write the report."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("only", nargs="*", help="module names to run, e.g. one_call")
    args = parser.parse_args(argv)
    selected = [m for m in MODULES if not args.only or m.split(".")[-1] in args.only]
    sections: list[tuple[Section, str, str]] = []
    failed = 0
    for name in selected:
        started = time.perf_counter()
        before = load_average()
        print(f"== {name} ({before})", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(name)
            measured = module.run()
            load = f"{before} before, {load_average()} after"
            at = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
            sections.extend((section, at, load) for section in measured)
        except Exception as exc:  # a broken benchmark must not hide the others
            failed += 1
            traceback.print_exc()
            failure = Section(
                title=f"{name}: FAILED",
                command=f"make bench ARGS={name.split('.')[-1]}",
                headers=["error"],
                table=[[f"{type(exc).__name__}: {exc}"]],
                ok=False,
            )
            sections.append((failure, f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC", before))
        print(f"   {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    out = BENCH_DIR / "RESULTS.md"
    old = out.read_text() if args.only and out.exists() else ""
    # Sections kept from an older run without their own date keep the date the file gave them.
    undated = re.search(r"\(those that do not: ([^)]+)\)", old)
    when = f"\n(those that do not: {undated.group(1)})" if undated else ""
    report = [
        "# gcdial benchmark results",
        "",
        f"Measured on {machine_summary()}; each section says when, and how busy the machine "
        f"was{when}.",
        "Every figure is a ratio against a baseline measured in the same run.",
        "Re-run all: `make bench`; one benchmark rewrites only its own sections.",
        "",
    ]
    fresh = {s.title: s.markdown(at, load) for s, at, load in sections}
    for section, _, _ in sections:
        if not section.ok:
            print(f"goal not met: {section.title}", file=sys.stderr)
    if old:
        report.extend(merge_sections(old, fresh))
    else:
        report.extend(fresh.values())
    out.write_text("\n".join(report))
    print(f"wrote {out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
