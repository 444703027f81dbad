"""Campaign throughput with the journal in PostgreSQL, against SQLite (issue 16).

The same campaign (the answered-calls list, 50 agents, the emulator at 5000x with its rate limit
lifted, as the campaign overhead section runs it, so that the journal is what binds) is run with
its journal in four places, each in a child process (bench/scripts/campaign_journal_run.py):

- (a) the CLI's one-file SQLite journal beside the list (``FileJournal``): the baseline;
- (b) the service's store, a SQLite file (``JournalDatabase.sqlite``): the store is made, the
  campaign's lease taken and the journal opened fenced by it, as ``gcdial serve`` does;
- (c) the same in PostgreSQL (``JournalDatabase.postgres``), on a throwaway cluster started as
  the tests start theirs (tests/pgcluster.py) but durable (fsync and synchronous commit on), since
  both SQLite journals commit with fsync;
- (d) as (c) on a cluster with fsync and synchronous commit off, as the tests run theirs: what
  is left of (c)'s cost without the server's disk flushes is the round trips.

The kinds run in turn, ROUNDS times, the order rotating each round; each run has a fresh journal
(a new file, store file or database). Figures are medians over the rounds: calls per second and
the campaign process's CPU per call over ``runner.run()``, each as a ratio to (a); for
PostgreSQL also the database server's CPU per call (every process of the cluster, from /proc).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench._harness import BENCH_DIR, Section, dump_json
from bench.campaign import _agents, _emulator, _env, _fixture, _measure, _write_list

CALLS = 400
ROUNDS = 7
COUNTED_CALLS = 300  # the untimed run whose statements PostgreSQL logs
PINGS = 300
KINDS = ("file", "sqlite", "postgres", "postgres_nofsync")
LABELS = {
    "file": "(a) CLI one-file SQLite journal (baseline)",
    "sqlite": "(b) service store, SQLite file (JournalDatabase.sqlite)",
    "postgres": "(c) service store, PostgreSQL (JournalDatabase.postgres)",
    "postgres_nofsync": "(d) as (c), fsync and synchronous commit off (the tests' cluster)",
}
SCRIPT = BENCH_DIR / "scripts" / "campaign_journal_run.py"


def _cluster_cpu_s(datadir: Path) -> float | None:
    """CPU seconds spent so far by the PostgreSQL cluster: the postmaster's own and its reaped
    children's (backends that ended), plus its live children's. None when /proc cannot tell."""
    try:
        pid = int((datadir / "postmaster.pid").read_text().split()[0])
        tick = os.sysconf("SC_CLK_TCK")

        def fields(p: int) -> list[str]:
            text = Path(f"/proc/{p}/stat").read_text()
            return text[text.rindex(")") + 2 :].split()

        own = fields(pid)
        # utime, stime, cutime, cstime are fields 14-17 (1-based); here 11-14 after the name.
        total = sum(int(v) for v in own[11:15])
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == pid:
                continue
            try:
                child = fields(int(entry.name))
            except (OSError, ValueError):
                continue
            if int(child[1]) == pid:  # ppid
                total += int(child[11]) + int(child[12])
        return total / tick
    except (OSError, ValueError, IndexError):
        return None


def _database(cluster: Any, name: str) -> str:
    import psycopg

    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    url: str = cluster.url(name)
    return url


def _run(emu: Any, kind: str, target: str, csv: Path, folder: Path) -> dict[str, Any]:
    # Its own config folder: the store's secret key and token cache stay out of the user's.
    env = {**_env(emu), "XDG_CONFIG_HOME": str(folder / "config")}
    child = _measure([sys.executable, str(SCRIPT), kind, target, str(csv), _agents()], env, folder)
    lines = [line for line in child.out.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} run exited {child.returncode}: {child.err[-600:]}")
    figures: dict[str, Any] = json.loads(lines[-1])
    figures["created"] = len(emu.calls_created())
    figures["process_cpu_s"] = child.cpu_s
    return figures


_STATEMENT = re.compile(
    r"LOG:  (?:statement|execute [^:]*): (BEGIN|COMMIT|ROLLBACK|SELECT|INSERT INTO|UPDATE|"
    r"DELETE FROM)\b(?:.*?\bFROM\b)?\s*([A-Za-z_.]+)?",
    re.IGNORECASE,
)


def _statement_kind(line: str) -> str | None:
    """``INSERT INTO campaign_events``, ``SELECT campaign_attempts``, ``BEGIN``...: what one
    logged statement did, and to which table; None for a line that is no statement."""
    found = _STATEMENT.search(line)
    if found is None:
        return None
    verb = found.group(1).upper()
    if verb in ("BEGIN", "COMMIT", "ROLLBACK"):
        return verb
    return f"{verb.split()[0]} {found.group(2) or '?'}"


def _counted(work: Path, cluster: Any, emu: Any) -> dict[str, Any]:
    """An untimed PostgreSQL run with every statement logged: statements and transactions per
    call; and the round trip of a bare ``SELECT 1`` on this cluster (median of PINGS)."""
    import psycopg

    folder = work / "counted"
    folder.mkdir()
    csv = _write_list(folder / "calls.csv", COUNTED_CALLS, answered_only=True)
    url = _database(cluster, "journal_counted")
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(b"ALTER DATABASE journal_counted SET log_statement = 'all'")
    offset = cluster.logfile.stat().st_size
    emu.reset()
    figures = _run(emu, "postgres", url, csv, folder)
    with open(cluster.logfile, "rb") as fh:
        fh.seek(offset)
        log = fh.read().decode(errors="replace")
    statements = sum(1 for line in log.splitlines() if "LOG:  statement:" in line
                     or "LOG:  execute" in line)  # fmt: skip
    kinds = Counter(k for k in map(_statement_kind, log.splitlines()) if k is not None)
    begins = kinds["BEGIN"]
    pings = []
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(PINGS):
            started = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            pings.append(time.perf_counter() - started)
    calls = int(figures["calls_placed"])
    return {
        "calls": calls,
        "statements_per_call": statements / calls,
        "transactions_per_call": begins / calls,
        "ping_ms": statistics.median(pings) * 1000,
        "per_call": {k: n / calls for k, n in kinds.most_common()},
    }


def measure(work: Path, clusters: dict[str, Any]) -> Section:
    """The journals, in turn, ROUNDS times; then the counted PostgreSQL run. ``clusters``: the
    PostgreSQL cluster of each kind that has one."""
    csv = _write_list(work / "calls.csv", CALLS, answered_only=True)
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    with _emulator(_fixture(work / "org.json"), limit=1_000_000, window_s=60) as emu:
        for rnd in range(ROUNDS):
            order = KINDS[rnd % len(KINDS) :] + KINDS[: rnd % len(KINDS)]
            for kind in order:
                folder = work / f"{kind}{rnd}"
                folder.mkdir()
                target = {
                    "file": str(folder / "calls.db"),
                    "sqlite": str(folder / "serve.sqlite3"),
                }.get(kind) or _database(clusters[kind], f"journal{rnd}")
                emu.reset()
                cluster = clusters.get(kind)
                server_before = _cluster_cpu_s(cluster.datadir) if cluster else None
                figures = _run(emu, kind.split("_")[0], target, csv, folder)
                server_after = _cluster_cpu_s(cluster.datadir) if cluster else None
                if server_before is not None and server_after is not None:
                    figures["server_cpu_s"] = server_after - server_before
                runs[kind].append(figures)
                print(
                    f"   campaign_store {kind} round {rnd + 1}: {figures['calls_placed']} calls "
                    f"in {figures['run_s']:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
        counted = _counted(work, clusters["postgres"], emu)
    dump_json(work / "campaign_store.json", {"runs": runs, "counted": counted})
    return _section(runs, counted)


def _section(runs: dict[str, list[dict[str, Any]]], counted: dict[str, Any]) -> Section:
    def per_s(r: dict[str, Any]) -> float:
        return float(r["calls_placed"]) / float(r["run_s"])

    def cpu_ms(r: dict[str, Any]) -> float:
        return float(r["run_cpu_s"]) / float(r["calls_placed"]) * 1000

    def paired(kind: str, measure: Any) -> list[float]:
        """Each round's ratio to (a) in the same round: the machine's load drifts between
        rounds (others share it), much less within one."""
        return [measure(r) / measure(b) for r, b in zip(runs[kind], runs["file"], strict=True)]

    busy = {kind: statistics.median(float(r["journal_busy_s"]) / float(r["run_s"])
                                    for r in runs[kind]) for kind in KINDS}  # fmt: skip
    table = []
    bad: list[str] = []
    for kind in KINDS:
        done = runs[kind]
        rate = statistics.median(per_s(r) for r in done)
        cpu = statistics.median(cpu_ms(r) for r in done)
        server = [float(r["server_cpu_s"]) / r["calls_placed"] * 1000 for r in done
                  if "server_cpu_s" in r]  # fmt: skip
        placed = sorted({int(r["calls_placed"]) for r in done})
        for r in done:
            if r["calls_placed"] != CALLS or r["created"] != CALLS or r["unknown"]:
                bad.append(
                    f"{kind}: {r['calls_placed']} placed, {r['created']} create-calls, "
                    f"{r['unknown']} unknown (of {CALLS})"
                )
        work_ms = statistics.median(float(r["journal_busy_s"]) / r["calls_placed"] * 1000
                                    for r in done)  # fmt: skip
        table.append(
            [
                LABELS[kind],
                "/".join(str(p) for p in placed),
                f"{rate:.1f}",
                f"{statistics.median(paired(kind, per_s)):.2f}",
                f"{cpu:.2f} ms",
                f"{statistics.median(paired(kind, cpu_ms)):.2f}",
                f"{statistics.median(server):.2f} ms" if server else "-",
                f"{work_ms:.1f} ms ({busy[kind]:.0%})",
                ", ".join(f"{per_s(r):.0f}" for r in done)
                + " ("
                + ", ".join(f"{x:.2f}" for x in paired(kind, per_s))
                + ")",
            ]
        )
    notes = [
        f"The same campaign each time: {CALLS} contacts that all answer and end quickly, 50 "
        "agents, one attempt each, the emulator at 5000x in the bench's process with no rate "
        "limit (as the campaign overhead section runs it), so the journal and the machine are "
        "what bind. Calls per second and CPU are measured over `runner.run()` in the child "
        "(journal creation, loading the list, agent checks, the calls and their outcomes); "
        "imports and the store's set-up are left out, alike for every kind.",
        f"{ROUNDS} rounds, the order of the kinds rotating each round, a fresh journal each run. "
        "Calls/s and CPU are the medians over the rounds; each 'vs (a)' is the median of the "
        "rounds' ratios to (a) in the same round (others share this machine, and its load "
        "drifts more between rounds than within one); the last column gives every round.",
        "(b) and (c) open the journal as `gcdial serve` does: the campaign's lease is taken in "
        "the store and every attempt's intent checks it (the fencing token) in its own "
        "transaction. The service's agent leases and shared budget are not part of this "
        "measure (the runner's default readiness gate in all three).",
        "PostgreSQL: local clusters on this machine (loopback TCP); (c)'s with fsync and "
        "synchronous commit on, as both SQLite journals commit with fsync (synchronous=FULL), "
        "(d)'s with them off (and full_page_writes off), as the tests run theirs. Server CPU "
        "per call is every process of the cluster (from /proc), outside the campaign's.",
    ]
    binds = ", ".join(f"{kind} {share:.0%}" for kind, share in busy.items())
    notes.append(
        "What binds: the journal's one worker thread runs its work one operation at a time; the "
        f"share of each run it was busy: {binds}. Near 100% the journal is the limit (calls/s "
        "cannot pass 1 / its time per call), well below it the machine is."
    )
    notes.append(
        f"The PostgreSQL journal's round trips: an untimed run of {int(counted['calls'])} calls "
        f"with every statement logged (log_statement = all) sent "
        f"{counted['statements_per_call']:.1f} statements per call in "
        f"{counted['transactions_per_call']:.1f} transactions, each statement a round trip to "
        f"the server (a bare `SELECT 1` takes {counted['ping_ms']:.2f} ms here, median of "
        f"{PINGS}, on an idle connection; under the run's load each waits for the server "
        "process to be scheduled too). Per call: "
        + ", ".join(f"{k} {n:.1f}" for k, n in counted["per_call"].items() if n >= 0.5)
        + "."
    )
    if bad:
        notes.append("Runs that did not place every call once: " + "; ".join(bad))
    return Section(
        title="Campaign throughput with the journal in PostgreSQL, against SQLite",
        command="make bench ARGS=campaign_store",
        headers=[
            "journal",
            "calls",
            "calls/s",
            "calls/s vs (a)",
            "campaign CPU per call",
            "CPU vs (a)",
            "PostgreSQL server CPU per call",
            "journal thread busy per call (share of run)",
            "calls/s each round (vs (a) in that round)",
        ],
        table=table,
        notes=notes,
        ok=not bad,
    )


def run() -> list[Section]:
    """The one measurement, on two throwaway PostgreSQL clusters: durable, and as the tests'."""
    with tempfile.TemporaryDirectory(prefix="gcdial-bench-campaign-store-") as tmp:
        work = Path(tmp)
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from pgcluster import PgCluster

        clusters: dict[str, Any] = {}
        try:
            clusters["postgres"] = PgCluster(durable=True).start()
            clusters["postgres_nofsync"] = PgCluster().start()
            started = time.perf_counter()
            section = measure(work, clusters)
            print(f"   campaign_store: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        finally:
            for cluster in clusters.values():
                cluster.stop()
        return [section]
