"""``gcdial serve``: overhead per dial against a bare library dial, and memory of 1,000 SSE streams.

Overhead: the same emulator (in-process, rate limit lifted), the same agent and numbers; first
``AsyncClient.dial`` directly (the baseline), then ``POST /v1/calls`` to the service (SQLite store,
each request with a fresh Idempotency-Key), one dial at a time, latency of each. The service's
figure includes its HTTP hop, the durable key claim, call record, events and audit writes.

Memory: ``gcdial serve --sandbox`` as its own process; its RSS idle (the baseline) and with 1,000
SSE streams open on ``/v1/events``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench._harness import VENV_BIN, Section
from gcdial.calls import CallParams
from gcdial.client import AsyncClient
from gcdial.emulator import EmulatorConfig, EmulatorServer
from gcdial.serve.app import create_app
from gcdial.serve.config import ServeConfig
from gcdial.serve.keys import new_api_key
from gcdial.serve.server import ServeServer
from gcdial.serve.sqlite_store import SqliteStore

DIALS = 200
STREAMS = 1000
# Goals (issue 21): an idle service, and one holding STREAMS open SSE streams, within these.
IDLE_GOAL_MB = 80.0
STREAMS_GOAL_MB = 140.0
# Dials take turns over this many agents: an agent has one live call at a time (a second dial
# for it is a 409 agent_busy), and each call ends before its agent's turn comes again.
AGENTS = 100
DOMAIN = "bench.example.com"


def _agent(i: int) -> str:
    return f"agent{i % AGENTS + 1:03d}@{DOMAIN}"


def _number(i: int) -> str:
    return f"+141555501{i % 50:02d}"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# The store calls a served dial makes, in order: the key, read on the event loop's thread
# (find_api_key_inline); one hop to the store's thread while the dial's agent check runs (the
# rules, the claim, the call's row: get_idempotency to insert_call, whose commit is the one
# fsync); one for the agent's row (claim_agent, update_call, append_event: call.placing); the
# settle (update_call, complete_idempotency).
ON_THE_WAY = (
    "find_api_key_inline",
    "get_idempotency",
    "dnc_listed",
    "claim_idempotency",
    "insert_call",
    "claim_agent",
    "update_call",
    "append_event",
    "complete_idempotency",
)
AFTER_THE_ANSWER = ("append_event", "append_audit")


class _TimedStore:
    """Times each call of the named store methods (in the worker thread that runs it)."""

    def __init__(self, store: SqliteStore, names: tuple[str, ...]) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        for name in names:
            setattr(store, name, self._timed(name, getattr(store, name)))

    def _timed(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.times[name].append(time.perf_counter() - started)

        return timed

    def median_ms(self, name: str) -> float:
        found = self.times.get(name)
        return statistics.median(found) * 1000 if found else 0.0


class Measured:
    """The run's latencies, and what the service's part of them is made of."""

    def __init__(self) -> None:
        self.bare: list[float] = []
        self.served: list[float] = []
        self.hop: list[float] = []  # GET /healthz: the HTTP hop alone
        self.hops: list[float] = []  # one await asyncio.to_thread of nothing: a thread hop
        self.store: _TimedStore | None = None


def _measure(emu: EmulatorServer, workdir: Path) -> Measured:
    """Bare dials and dials through the service, alternating, so both see the same load."""
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, name="bench-bare", daemon=True)
    runner.start()
    client = AsyncClient(
        base_url=emu.base_url, client_id=emu.client_id, client_secret=emu.client_secret
    )

    def bare(i: int) -> float:
        started = time.perf_counter()
        asyncio.run_coroutine_threadsafe(
            client.dial(_agent(i), CallParams(to=_number(i))), loop
        ).result()
        return time.perf_counter() - started

    measured = Measured()

    def thread_hop() -> float:
        async def hop() -> float:
            started = time.perf_counter()
            await asyncio.to_thread(lambda: None)
            return time.perf_counter() - started

        return asyncio.run_coroutine_threadsafe(hop(), loop).result()

    store = SqliteStore(workdir / "bench.sqlite3")
    made = new_api_key("bench", now=time.time(), rate_per_minute=1_000_000)
    store.add_api_key(made.record)
    measured.store = _TimedStore(store, tuple(dict.fromkeys(ON_THE_WAY + AFTER_THE_ANSWER)))
    app = create_app(
        store,
        lambda: AsyncClient(
            base_url=emu.base_url, client_id=emu.client_id, client_secret=emu.client_secret
        ),
        # Any hour: the bench runs whenever it is run; the rules are checked all the same.
        ServeConfig(calling_window="00:00-24:00"),
        single_process=True,
    )
    headers = {"Authorization": f"Bearer {made.key}"}
    try:
        with ServeServer(app) as server, httpx.Client(base_url=server.base_url, timeout=60) as http:

            def served(i: int) -> float:
                started = time.perf_counter()
                answer = http.post(
                    "/v1/calls",
                    json={"agent": _agent(i), "to": _number(i)},
                    headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                )
                elapsed = time.perf_counter() - started
                if answer.status_code != 202 or answer.json()["status"] != "placed":
                    raise RuntimeError(f"dial through the service failed: {answer.text}")
                return elapsed

            def hop() -> float:
                started = time.perf_counter()
                http.get("/healthz")
                return time.perf_counter() - started

            bare(0)  # the first of each warms the token, the channel and the connections
            served(0)
            measured.store.times.clear()
            for i in range(1, DIALS + 1):
                measured.bare.append(bare(i))
                measured.served.append(served(i))
                measured.hop.append(hop())
                measured.hops.append(thread_hop())
    finally:
        asyncio.run_coroutine_threadsafe(client.aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()
        store.close()
    return measured


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _open_streams(base_url: str, key: str, count: int) -> list[asyncio.StreamWriter]:
    host, port = base_url.removeprefix("http://").split(":")
    writers: list[asyncio.StreamWriter] = []
    request = (
        f"GET /v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()

    async def one() -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(request)
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"SSE stream refused: {status!r}")
        return writer

    for start in range(0, count, 100):
        writers.extend(
            await asyncio.gather(*(one() for _ in range(start, min(count, start + 100))))
        )
    return writers


def _sse_memory(workdir: Path) -> tuple[float, float, float]:
    env = {
        **os.environ,
        "GCDIAL_SERVE_STORE": str(workdir / "sse.sqlite3"),
        "XDG_CONFIG_HOME": str(workdir / "config"),
        "NO_COLOR": "1",
    }
    gcdial = str(VENV_BIN / "gcdial")
    key = subprocess.run(
        [gcdial, "serve", "keys", "create", "--name", "sse", "--rate", "100000/min"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout.strip()  # fmt: skip
    process = subprocess.Popen(
        [gcdial, "serve", "--sandbox", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().split()[4]
        with httpx.Client(base_url=base_url) as http:
            http.get("/healthz")
        time.sleep(1.0)
        idle = _rss_mb(process.pid)

        async def hold() -> float:
            writers = await _open_streams(base_url, key, STREAMS)
            await asyncio.sleep(2.0)
            loaded = _rss_mb(process.pid)
            for writer in writers:
                writer.close()
            return loaded

        loaded = asyncio.run(hold())
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    return idle, loaded, (loaded - idle) * 1024 / STREAMS


def run() -> list[Section]:
    """Both measurements, as two sections of RESULTS.md."""
    with tempfile.TemporaryDirectory() as tmp:
        fixture = Path(tmp) / "org.json"
        fixture.write_text(
            json.dumps(
                {
                    "clients": [
                        {"id": "bench", "secret": "bench-secret", "grant": "client_credentials"}
                    ],
                    "generate_agents": {"count": AGENTS, "email_domain": DOMAIN},
                }
            )
        )
        config = EmulatorConfig(speed=50, rate_limit_per_minute=1_000_000, fixture=fixture)
        with EmulatorServer(config) as emu:
            measured = _measure(emu, Path(tmp))
    bare, served = measured.bare, measured.served
    b50, b99 = statistics.median(bare), _pct(bare, 0.99)
    s50, s99 = statistics.median(served), _pct(served, 0.99)
    timed = measured.store
    assert timed is not None
    on_the_way = ", ".join(f"{name} {timed.median_ms(name):.1f}" for name in ON_THE_WAY)
    gate_ms = (
        timed.median_ms("dnc_listed")
        + timed.median_ms("claim_agent")
        + statistics.median(measured.hops) * 1000
    )
    after = ", ".join(f"{name} {timed.median_ms(name):.1f}" for name in AFTER_THE_ANSWER)
    overhead = Section(
        title="gcdial serve: time per dial vs a bare library dial",
        command="make bench ARGS=serve",
        headers=["way", "p50", "vs baseline", "p99", "vs baseline"],
        table=[
            [
                "AsyncClient.dial (baseline)",
                f"{b50 * 1000:.1f} ms",
                "1.00x",
                f"{b99 * 1000:.1f} ms",
                "1.00x",
            ],
            [
                "POST /v1/calls (SQLite store)",
                f"{s50 * 1000:.1f} ms",
                f"{s50 / b50:.2f}x",
                f"{s99 * 1000:.1f} ms",
                f"{s99 / b99:.2f}x",
            ],
        ],
        notes=[
            f"{DIALS} dials each, one at a time, alternating bare and served, same in-process "
            "emulator (rate limit lifted); the machine is shared, so compare within a run.",
            f"Service overhead per dial: p50 {(s50 - b50) * 1000:+.1f} ms, "
            f"p99 {(s99 - b99) * 1000:+.1f} ms.",
            "Where it goes (medians of this run, ms): the HTTP hop through uvicorn and FastAPI "
            f"(GET /healthz) {statistics.median(measured.hop) * 1000:.1f}; the store calls on "
            "the way: the key read on the event loop's thread, then three hops to the store's "
            "thread (a pool thread hop alone "
            f"{statistics.median(measured.hops) * 1000:.2f}): the rules, the claim and the "
            "call's row, while the dial's own agent check runs (insert_call's commit is the "
            "one fsync, for the claim and the row); the agent's row and call.placing; the "
            f"settle: {on_the_way} (update_call: the agent's id noted, then the settle). "
            f"After the answer, off its path: {after} (call.placed, the audit line), then the "
            "call's progress events while it is followed; they share the store and the CPU "
            "with the next dial.",
            f"The dial gate's own cost (issue 17): the do-not-call read, the agent's row and "
            f"the store hop that row takes, {gate_ms:.1f} ms: {gate_ms / (s50 * 1000):.3f} of "
            f"the served dial at p50 ({gate_ms / (b50 * 1000):.3f} of a bare dial); one store "
            "round trip of its own (the do-not-call read rides the claim's hop). On a shared "
            "store a dial also takes its agent's row again just before the POST, in the same "
            "hop as the check that nobody took the call over.",
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        idle, loaded, per_stream_kb = _sse_memory(Path(tmp))
    memory = Section(
        title=f"gcdial serve: memory with {STREAMS:,} open SSE streams",
        command="make bench ARGS=serve",
        headers=["state", "RSS", "vs baseline", "goal"],
        table=[
            ["idle service (baseline)", f"{idle:.0f} MB", "1.00x", f"<= {IDLE_GOAL_MB:.0f} MB"],
            [
                f"{STREAMS:,} streams on /v1/events",
                f"{loaded:.0f} MB",
                f"{loaded / idle:.2f}x",
                f"<= {STREAMS_GOAL_MB:.0f} MB",
            ],
        ],
        ok=idle <= IDLE_GOAL_MB and loaded <= STREAMS_GOAL_MB,
        notes=[
            "`gcdial serve --sandbox` in its own process (the sandbox emulator runs inside it).",
            f"About {per_stream_kb:.0f} KB per open stream.",
            "The limit that binds is memory held, not CPU: RSS read from /proc after the streams "
            "are open and idle. Place names for the number preview (phonenumbers' geocoder, "
            "about 100 MB) load on the first preview, not with the app: an idle service has "
            "none (tests/serve/test_idle_footprint.py).",
        ],
    )
    return [overhead, memory]


if __name__ == "__main__":
    for section in run():
        print(section.markdown(), file=sys.stderr)
