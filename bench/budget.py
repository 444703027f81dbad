"""The Genesys request budget shared by a service's replicas through the store (issue 17).

- Sharing: three ``gcdial serve`` processes on one PostgreSQL dial together for one OAuth client;
  the emulator counts every token of that client in one window (``rate_limit_scope="client"``)
  and records each window (GET /_emulator/ratelimit). Measured: requests over the windows the
  load spanned against the client's budget (the baseline), and 429s.
- Campaigns: three ``gcdial serve`` replicas on one PostgreSQL each run a campaign (created and
  started through the API, one on each replica, over agents of their own) for one OAuth client;
  measured on the emulator's ledger of windows the same way.
- Cost: one replica (SQLite store) dials one call at a time, with the budget in the store and
  with an in-process budget (the baseline, as before it), alternating; the store round trips
  the shared budget made per dial and the time they took, and the dial latency ratio.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench._harness import VENV_BIN, Section, dump_json
from gcdial.client import AsyncClient
from gcdial.emulator import EmulatorConfig, EmulatorServer
from gcdial.serve.app import create_app
from gcdial.serve.budget import SharedBudget
from gcdial.serve.config import ServeConfig
from gcdial.serve.keys import new_api_key
from gcdial.serve.server import ServeServer
from gcdial.serve.sqlite_store import SqliteStore
from gcdial.serve.store import Store

REPLICAS = 3
AGENTS = 150
DOMAIN = "bench.example.com"
# 30 requests a second for the client, all replicas together: below what three replicas dial
# unthrottled on this 2-core machine, so that the budget binds (the section says whether it did).
LIMIT = 300
WINDOW_S = 10.0
LOAD_S = 62.0
IN_FLIGHT = 6  # concurrent dials per replica
SPEED = 2000.0
ANSWERS = "+14155550100"
COST_DIALS = 150
GCDIAL = str(VENV_BIN / "gcdial")
GOAL = 0.95


def _fixture(path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "clients": [
                    {"id": "bench", "secret": "bench-secret", "grant": "client_credentials"}
                ],
                "generate_agents": {"count": AGENTS, "email_domain": DOMAIN},
            }
        )
    )
    return path


def _agent(i: int) -> str:
    return f"agent{i % AGENTS + 1:03d}@{DOMAIN}"


def _start_replica(url: str, emu: EmulatorServer, log: Path) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "GCDIAL_DATABASE_URL": url,
        "GENESYSCLOUD_OAUTHCLIENT_ID": emu.client_id,
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": emu.client_secret,
        "GCDIAL_BASE_URL": emu.base_url,
        "NO_COLOR": "1",
    }
    err = open(log, "w")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(
        [GCDIAL, "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=err, env=env, text=True
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        found = re.search(r"serving at (http://\S+)", line)
        if found:
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, found.group(1)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"gcdial serve did not start: {log.read_text()[-400:]}")


async def _load(urls: list[str], key: str, until: float) -> dict[int, int]:
    codes: dict[int, int] = {}
    counter = itertools.count()

    async def worker(http: httpx.AsyncClient, agents: list[str]) -> None:
        for agent in itertools.cycle(agents):
            if time.monotonic() >= until:
                return
            answer = await http.post(
                "/v1/calls",
                json={"agent": agent, "to": ANSWERS},
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": f"b{next(counter)}"},
            )
            codes[answer.status_code] = codes.get(answer.status_code, 0) + 1

    per = AGENTS // (len(urls) * IN_FLIGHT)
    clients = [httpx.AsyncClient(base_url=url, timeout=60) for url in urls]
    try:
        tasks = []
        for r, http in enumerate(clients):
            for w in range(IN_FLIGHT):
                first = (r * IN_FLIGHT + w) * per
                tasks.append(worker(http, [_agent(i) for i in range(first, first + per)]))
        await asyncio.gather(*tasks)
    finally:
        for http in clients:
            await http.aclose()
    return codes


def _spanned(windows: list[dict[str, Any]]) -> dict[str, Any]:
    windows = sorted(windows, key=lambda w: w["start"])
    # The first window holds start-up (tokens, channels); the last is cut off by the end of the
    # load: neither is the budget's to fill.
    full = windows[1:-1]
    if len(full) < 2:
        raise RuntimeError(f"the load spanned too few rate windows: {windows}")
    seconds = windows[-1]["start"] - full[0]["start"]
    return {
        "windows": len(full),
        "requests": sum(int(w["allowed"]) for w in full),
        "seconds": seconds,
        "filled": sum(1 for w in full if w["allowed"] >= w["limit"]),
        "max_allowed": max(int(w["allowed"]) for w in windows),
    }


def _stop(processes: list[subprocess.Popen[str]]) -> None:
    """Stop the replicas (SIGTERM, then SIGKILL after 15 s)."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass(frozen=True)
class _BudgetUse:
    """How the load used the client's budget, on the emulator's ledger of rate windows."""

    spanned: dict[str, Any]
    rate: float
    used: float
    share: float
    refused: int
    binds: bool

    def baseline_row(self) -> list[str]:
        return [
            "client's budget (baseline)",
            f"{LIMIT} req / {WINDOW_S:g} s = {self.rate:.0f} req/s",
            "1.00",
        ]

    def rows(self, together: str) -> list[list[str]]:
        """The budget, how much of it the load used, the fullest window, the 429s."""
        spanned = self.spanned
        return [
            self.baseline_row(),
            [
                together,
                f"{spanned['requests']} in {spanned['seconds']:.1f} s "
                f"({spanned['windows']} windows) = {self.used:.1f} req/s",
                f"{self.share:.3f}",
            ],
            ["most requests in one window", f"{spanned['max_allowed']} (limit {LIMIT})", "-"],
            ["429 responses (emulator's ledger)", str(self.refused), "-"],
        ]

    def binding(self) -> str:
        spanned = self.spanned
        if self.binds:
            return (
                "Limit that binds: the client's budget (every one of the "
                f"{spanned['windows']} windows used up)."
            )
        return (
            f"Limit that binds: not the budget alone: {spanned['filled']} of "
            f"{spanned['windows']} windows used up (the machine could not dial faster); re-run "
            "on a quieter machine."
        )


def _budget_use(ledger: dict[str, Any]) -> _BudgetUse:
    spanned = _spanned([w for w in ledger["windows"] if w["key"] == "bench"])
    rate = LIMIT / WINDOW_S
    used = spanned["requests"] / spanned["seconds"]
    return _BudgetUse(
        spanned=spanned,
        rate=rate,
        used=used,
        share=used / rate,
        refused=int(ledger["refused"]),
        binds=spanned["filled"] == spanned["windows"],
    )


def _database(cluster: Any, name: str) -> str:
    import psycopg

    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    url: str = cluster.url(name)
    return url


def sharing(work: Path, cluster: Any) -> Section:
    """Three replicas on one PostgreSQL, one client's budget."""
    from gcdial.serve.pg_store import PostgresStore

    processes: list[subprocess.Popen[str]] = []
    try:
        url = _database(cluster, "sharing")
        store = PostgresStore(url)
        made = new_api_key("bench", now=time.time(), rate_per_minute=1_000_000)
        store.add_api_key(made.record)
        store.close()
        config = EmulatorConfig(
            speed=SPEED,
            admin=True,
            fixture=_fixture(work / "org.json"),
            rate_limit_per_minute=LIMIT,
            rate_limit_window_s=WINDOW_S,
            rate_limit_scope="client",
            token_lifetime_s=1e9,
            channel_lifetime_s=1e9,
            heartbeat_interval_s=3600,
        )
        with EmulatorServer(config) as emu:
            urls = []
            for n in range(REPLICAS):
                process, base = _start_replica(url, emu, work / f"replica{n}.log")
                processes.append(process)
                urls.append(base)
            codes = asyncio.run(_load(urls, made.key, time.monotonic() + LOAD_S))
            ledger = emu.rate_windows()
            counts = emu.request_counts()
    finally:
        _stop(processes)
    use = _budget_use(ledger)
    share, refused, binds = use.share, use.refused, use.binds
    dump_json(work / "sharing.json", {"codes": codes, "ledger": ledger, "requests": counts})
    return Section(
        title="gcdial serve: three replicas share one OAuth client's budget",
        command="make bench ARGS=budget",
        headers=["measure", "value", "vs budget"],
        table=[
            *use.rows(f"{REPLICAS} replicas together, over the windows spanned"),
            ["dials answered", ", ".join(f"{c}: {n}" for c, n in sorted(codes.items())), "-"],
        ],
        notes=[
            use.binding(),
            f"{REPLICAS} `gcdial serve` processes on one PostgreSQL, {IN_FLIGHT} dials in flight "
            f"each for {LOAD_S:g} s over {AGENTS} agents (a 409 agent_busy is an agent whose "
            f"last call had not ended yet), emulator at {SPEED:g}x counting the client's tokens "
            "together (rate_limit_scope client). Each dial is several Genesys requests (the "
            "agent's lookup and readiness, the create-call, the subscription, the call's read).",
            "Measured on the emulator's ledger of windows, as the campaign throughput section: "
            "the first window (start-up) and the last (cut off) are left out; the gaps between "
            "windows count against the budget.",
            f"Goal: at least {GOAL} of the budget with 0 responses of 429.",
        ],
        ok=binds and share >= GOAL and refused == 0,
    )


CAMPAIGN_CONTACTS = 1500  # each: more than a campaign can dial in LOAD_S at its share


def _campaign_numbers(n: int) -> list[str]:
    """The n-th campaign's contacts: numbers that answer, none shared with another campaign."""
    from bench.campaign import _phone

    first = n * CAMPAIGN_CONTACTS
    return [_phone(i, answered_only=True) for i in range(first, first + CAMPAIGN_CONTACTS)]


def _campaign_list(n: int) -> bytes:
    rows = (f"{phone},c{i}\n" for i, phone in enumerate(_campaign_numbers(n)))
    return ("phone,name\n" + "".join(rows)).encode()


def _campaign_holders(url: str) -> dict[str, str]:
    """Which replica holds each campaign's lease now (the store's ``leases`` table)."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT name, owner FROM leases WHERE name LIKE 'campaign:%%' AND expires_at > %s",
            (time.time(),),
        ).fetchall()
    return {str(name): str(owner) for name, owner in rows}


def campaigns(work: Path, cluster: Any) -> Section:
    """Three replicas on one PostgreSQL, each running a campaign started through its API, one
    client's budget."""
    from gcdial.serve.pg_store import PostgresStore

    processes: list[subprocess.Popen[str]] = []
    states: list[dict[str, Any]] = []
    created: list[str] = []
    overlaps = 0
    holders: dict[str, str] = {}
    try:
        url = _database(cluster, "campaigns")
        store = PostgresStore(url)
        made = new_api_key(
            "bench", now=time.time(), rate_per_minute=1_000_000, scopes=("dial", "campaigns")
        )
        store.add_api_key(made.record)
        store.close()
        config = EmulatorConfig(
            speed=SPEED,
            admin=True,
            fixture=_fixture(work / "org.json"),
            rate_limit_per_minute=LIMIT,
            rate_limit_window_s=WINDOW_S,
            rate_limit_scope="client",
            token_lifetime_s=1e9,
            channel_lifetime_s=1e9,
            heartbeat_interval_s=3600,
        )
        headers = {"Authorization": f"Bearer {made.key}"}
        with EmulatorServer(config) as emu:
            urls = []
            for n in range(REPLICAS):
                process, base = _start_replica(url, emu, work / f"replica{n}.log")
                processes.append(process)
                urls.append(base)
            https = [httpx.Client(base_url=base, timeout=60) for base in urls]
            try:
                ids = []
                per = AGENTS // REPLICAS
                for n, http in enumerate(https):
                    agents = ",".join(_agent(i) for i in range(n * per, (n + 1) * per))
                    answer = http.post(
                        "/v1/campaigns",
                        files={"file": (f"list{n}.csv", _campaign_list(n), "text/csv")},
                        data={"agents": agents, "window": "00:00-23:59", "maxAttempts": "1",
                              "name": f"bench{n}"},
                        headers=headers,
                    )  # fmt: skip
                    if answer.status_code != 201:
                        raise RuntimeError(f"campaign not created: {answer.text}")
                    ids.append(answer.json()["id"])
                for n, (http, cid) in enumerate(zip(https, ids, strict=True)):
                    answer = http.post(f"/v1/campaigns/{cid}/start", headers=headers)
                    if answer.status_code != 200:
                        raise RuntimeError(f"campaign {n} did not start: {answer.text}")
                time.sleep(LOAD_S)
                ledger = emu.rate_windows()
                counts = emu.request_counts()
                created = [c["phoneNumber"] for c in emu.calls_created()]
                overlaps = int(emu.overlaps()["total"])
                holders = _campaign_holders(url)
                for http, cid in zip(https, ids, strict=True):
                    states.append(http.get(f"/v1/campaigns/{cid}", headers=headers).json())
                for http, cid in zip(https, ids, strict=True):
                    http.post(f"/v1/campaigns/{cid}/stop", headers=headers)
            finally:
                for http in https:
                    http.close()
    finally:
        _stop(processes)
    use = _budget_use(ledger)
    share, refused, binds = use.share, use.refused, use.binds
    creates = int(counts["byRoute"].get("POST /api/v2/conversations/calls/user/{userId}", 0))
    running = [s.get("state") for s in states]
    per_campaign = [len(set(created) & set(_campaign_numbers(n))) for n in range(REPLICAS)]
    twice = len(created) - len(set(created))
    dump_json(work / "campaigns.json", {"states": states, "ledger": ledger, "requests": counts})
    return Section(
        title="gcdial serve: three replicas' campaigns share one OAuth client's budget",
        command="make bench ARGS=budget",
        headers=["measure", "value", "vs budget"],
        table=[
            *use.rows(f"{REPLICAS} replicas' campaigns together, over the windows spanned"),
            [
                "create-calls: all, then each replica's campaign",
                f"{creates}: " + " / ".join(map(str, per_campaign)),
                "-",
            ],
            ["numbers dialed twice; overlapping calls for an agent", f"{twice}; {overlaps}", "-"],
            [
                "replicas holding a campaign's lease at the end of the load",
                f"{len(set(holders.values()))} (of {len(holders)} campaigns)",
                "-",
            ],
            ["campaign states at the end of the load", ", ".join(map(str, running)), "-"],
        ],
        notes=[
            use.binding(),
            f"{REPLICAS} `gcdial serve` processes on one PostgreSQL; through each one's API a "
            f"campaign of {CAMPAIGN_CONTACTS} answering contacts over {AGENTS // REPLICAS} agents "
            f"of its own is created and started (so each replica runs one), for {LOAD_S:g} s, "
            "then stopped; emulator as in the section above (rate_limit_scope client, "
            f"{SPEED:g}x).",
            "Measured on the emulator's ledger of windows as the section above: the first "
            "window (start-up) and the last (cut off) are left out; the gaps between windows "
            "count against the budget.",
            f"Goal (issue 17): at least {GOAL} of the budget with 0 responses of 429.",
        ],
        ok=binds
        and share >= GOAL
        and refused == 0
        and twice == 0
        and min(per_campaign) > 0
        and len(set(holders.values())) == REPLICAS,
    )


def _replica(
    emu: EmulatorServer, work: Path, shared: bool, pg_url: str | None = None
) -> tuple[ServeServer, str]:
    store: Store
    if pg_url is not None:
        from gcdial.serve.pg_store import PostgresStore

        store = PostgresStore(pg_url)
    else:
        work.mkdir(parents=True, exist_ok=True)
        store = SqliteStore(work / "serve.sqlite3")
    made = new_api_key("bench", now=time.time(), rate_per_minute=1_000_000)
    store.add_api_key(made.record)
    app = create_app(
        store,
        lambda: AsyncClient(
            base_url=emu.base_url, client_id=emu.client_id, client_secret=emu.client_secret
        ),
        ServeConfig(shared_budget=shared),
        single_process=True,
    )
    return ServeServer(app), made.key


def _dial(http: httpx.Client, key: str, agent: str) -> float:
    started = time.perf_counter()
    answer = http.post(
        "/v1/calls",
        json={"agent": agent, "to": ANSWERS},
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": str(uuid.uuid4())},
    )
    if answer.status_code != 202:
        raise RuntimeError(f"dial failed: {answer.text}")
    return time.perf_counter() - started


def cost(work: Path, cluster: Any) -> Section:
    """Store round trips and time per dial of the shared budget, and the dial's latency ratio:
    for each store (SQLite, PostgreSQL), a replica with an in-process budget (the baseline) and
    one with the budget in that store, each on its own database, dialing in turn (the order
    turns too, so that no replica always goes first)."""
    config = EmulatorConfig(
        speed=50, admin=True, rate_limit_per_minute=1_000_000, fixture=_fixture(work / "org.json")
    )
    quarter = AGENTS // 4
    kinds = (
        ("SQLite", False, None),
        ("SQLite", True, None),
        ("PostgreSQL", False, _database(cluster, "cost_local")),
        ("PostgreSQL", True, _database(cluster, "cost_shared")),
    )
    times: list[list[float]] = [[] for _ in kinds]
    takes: dict[int, dict[str, float]] = {}
    with EmulatorServer(config) as emu:
        made = [_replica(emu, work / f"r{n}", shared, url) for n, (_, shared, url) in
                enumerate(kinds)]  # fmt: skip
        servers = [server.start() for server, _ in made]
        https = [httpx.Client(base_url=server.base_url, timeout=60) for server in servers]
        try:
            # The first dial of each warms the token, the channel and the connections.
            for n, ((_, key), http) in enumerate(zip(made, https, strict=True)):
                _dial(http, key, _agent(n * quarter))
            before: dict[int, dict[str, float]] = {}
            for n, server in enumerate(servers):
                budget = server.app.state.service.core.client.budget
                if isinstance(budget, SharedBudget):
                    before[n] = budget.stats()
            requests_before = int(emu.request_counts()["total"])
            for i in range(1, COST_DIALS + 1):
                for n in itertools.islice(itertools.cycle(range(4)), i % 4, i % 4 + 4):
                    agent = _agent(n * quarter + i % quarter)
                    times[n].append(_dial(https[n], made[n][1], agent))
            for n in before:
                after = servers[n].app.state.service.core.client.budget.stats()
                takes[n] = {k: after[k] - before[n][k] for k in after}
            requests = int(emu.request_counts()["total"]) - requests_before
        finally:
            for http in https:
                http.close()
            for server in servers:
                server.stop()
    table = []
    for n, (store, shared, _) in enumerate(kinds):
        p50 = statistics.median(times[n])
        if not shared:
            base = p50
            table.append([f"{store}: in-process budget (baseline)", f"{p50 * 1000:.1f} ms",
                          "1.00x", "0", "-", "-"])  # fmt: skip
            continue
        count, spent = takes[n]["takes"], takes[n]["take_seconds"]
        table.append(
            [
                f"{store}: budget in the store",
                f"{p50 * 1000:.1f} ms",
                f"{p50 / base:.2f}x",
                f"{count / COST_DIALS:.2f}",
                f"{spent / COST_DIALS * 1000:.2f} ms ({spent / max(1, count) * 1000:.2f} ms each)",
                f"{spent / COST_DIALS / base:.3f}",
            ]
        )
    return Section(
        title="gcdial serve: the shared budget's cost per dial",
        command="make bench ARGS=budget",
        headers=[
            "dial through the service",
            "p50",
            "vs baseline",
            "store round trips / dial",
            "store time / dial",
            "store time vs baseline dial",
        ],
        table=table,
        notes=[
            f"{COST_DIALS} dials each, one at a time, taking turns between four replicas (each "
            "on its own database), same emulator (rate limit lifted); about "
            f"{requests / (4 * COST_DIALS):.1f} Genesys requests per dial, each taking a token. "
            "A take (one transaction: the evidence in, a batch of tokens out) reserves up to "
            "ServeConfig.budget_batch (8) tokens, as many as the replica spent in the last "
            "0.25 s, so a busy replica makes one store round trip per several requests.",
            "The store time is spent in a worker thread, one take at a time per replica; the "
            "latency ratio is the whole served dial's against the same store without the "
            "shared budget, so it carries this shared machine's noise too (4 replicas and the "
            "emulator in one process on 2 busy cores): the store time per dial, against the "
            "baseline's dial, is the cost itself.",
        ],
    )


def run() -> list[Section]:
    """The three measurements (GCDIAL_BENCH_BUDGET=campaigns,... runs only those named)."""
    with tempfile.TemporaryDirectory(prefix="gcdial-bench-budget-") as tmp:
        work = Path(tmp)
        sections = []
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from pgcluster import PgCluster

        cluster = PgCluster().start()
        try:
            only = os.environ.get("GCDIAL_BENCH_BUDGET")  # e.g. "campaigns": one section
            for name, measure in (("cost", cost), ("sharing", sharing), ("campaigns", campaigns)):
                if only and name not in only.split(","):
                    continue
                folder = work / name
                folder.mkdir()
                started = time.perf_counter()
                sections.append(measure(folder, cluster))
                print(f"   budget {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        finally:
            cluster.stop()
        return sections
