"""Two ``gcdial serve`` replicas on one PostgreSQL, one emulator, a CRM that retries everything.

A CRM-like client sends 300 dials, each with its own Idempotency-Key, and retries each one with
the same key against either replica until it has an answer: after a timeout it gave itself (the
answer dropped), after a 503 or a refused connection, while the first attempt is still placing
(409). Meanwhile the emulator drops some create-call answers and answers some with 503, the
webhook receiver fails some first deliveries, and one replica is killed with -9 mid-run and
started again. At the end:

- the emulator's ledger holds at most one call per dial, and exactly one for each dial answered
  ``placed``, none for a dial answered ``not_placed`` or ``refused``;
- every event in the store reached the webhook receiver, correctly signed (dedupe by id).
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

import gcdial as gcdial_pkg
from gcdial.emulator import EmulatorConfig, EmulatorServer
from gcdial.serve.signing import verify
from pgcluster import replica_env

GCDIAL = Path(sys.executable).parent / "gcdial"
DIALS = 300
WORKERS = 12
AGENTS = 40
STALE_CLAIM_S = 4
WEBHOOK_LEASE_S = 3
# Every dial's retries stop after this: a dial still unanswered then fails the test.
DIAL_DEADLINE_S = 60


def _agent(i: int) -> str:
    # Many agents: an agent takes one call at a time, so a dial for a busy one is a 409 that
    # the CRM retries with the same key (the refusal is not the key's answer).
    return f"agent{i % AGENTS + 1:03d}@replicas.example.com"


def _number(i: int) -> str:
    # 00-49 answer in the sandbox; the dial is told apart by its attribute, not its number.
    return f"+1415555{100 + i % 50:04d}"


@dataclass
class Replica:
    """One ``gcdial serve`` process."""

    name: str
    process: subprocess.Popen[str]
    url: str


@dataclass
class Fleet:
    """The replicas the CRM may call, swapped as they die and come back."""

    env: dict[str, str]
    log_dir: Path
    replicas: dict[str, Replica] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, name: str) -> Replica:
        log = (self.log_dir / f"{name}-{time.monotonic_ns()}.log").open("w")
        process = subprocess.Popen(
            [
                str(GCDIAL),
                "serve",
                "--port",
                "0",
                "--stale-claim",
                str(STALE_CLAIM_S),
                "--webhook-lease",
                str(WEBHOOK_LEASE_S),
                "--allow-insecure-webhooks",
            ],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        url = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            log.write(line)
            if found := re.search(r"serving at (http://\S+)", line):
                url = found.group(1)
                break
        if not url:
            process.kill()
            process.wait()
            process.stdout.close()
            log.close()
            raise AssertionError(f"replica {name} did not start: see {log.name}")
        # Keep draining its output so it never blocks on a full pipe.
        threading.Thread(target=_drain, args=(process, log), daemon=True).start()
        replica = Replica(name, process, url)
        with self.lock:
            self.replicas[name] = replica
        return replica

    def urls(self) -> list[str]:
        with self.lock:
            return [r.url for r in self.replicas.values() if r.process.poll() is None]

    def kill(self, name: str) -> None:
        with self.lock:
            replica = self.replicas.pop(name)
        replica.process.send_signal(signal.SIGKILL)
        replica.process.wait()

    def stop_all(self) -> None:
        with self.lock:
            replicas, self.replicas = list(self.replicas.values()), {}
        for replica in replicas:
            replica.process.send_signal(signal.SIGINT)
        for replica in replicas:
            try:
                replica.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()


def _drain(process: subprocess.Popen[str], log: Any) -> None:
    assert process.stdout is not None
    with log, process.stdout:
        for line in process.stdout:
            log.write(line)


class Receiver:
    """A webhook receiver that checks signatures, dedupes by id and fails some first tries."""

    def __init__(self) -> None:
        self.secret = ""
        self.received: Counter[str] = Counter()
        self.bad_signatures = 0
        self.bad: list[tuple[str, dict[str, str], int]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:
                    return  # the sender died mid-request (kill -9): nothing was delivered
                msg_id = self.headers.get("webhook-id", "")
                good = verify(
                    receiver.secret,
                    msg_id,
                    self.headers.get("webhook-timestamp", ""),
                    body,
                    self.headers.get("webhook-signature", ""),
                    now=time.time(),
                )
                with receiver.lock:
                    if not good:
                        receiver.bad_signatures += 1
                        receiver.bad.append((msg_id, dict(self.headers), len(body)))
                    first = msg_id not in receiver.received
                    receiver.received[msg_id] += 1
                # One first delivery in eight fails: the outbox must retry it.
                fail = first and hash(msg_id) % 8 == 0
                self.send_response(500 if fail else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def ids(self) -> set[str]:
        with self.lock:
            return {msg_id for msg_id, count in self.received.items() if count}


@dataclass
class Outcome:
    """What the CRM finally learnt about one dial."""

    index: int
    status: str = ""
    call_id: str = ""
    attempts: int = 0
    answers: Counter[str] = field(default_factory=Counter)


def _keys_create(env: dict[str, str], name: str, scopes: str) -> str:
    done = subprocess.run(
        [str(GCDIAL), "serve", "keys", "create", "--name", name, "--scopes", scopes,
         "--rate", "100000/min", "--json"],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["key"])


def _crm_dial(fleet: Fleet, key: str, index: int, rng: random.Random) -> Outcome:
    """Dial once, retrying with the same key on any replica until an answer arrives."""
    outcome = Outcome(index)
    body = {"agent": _agent(index), "to": _number(index), "attributes": {"crmDial": str(index)}}
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"crm-dial-{index}"}
    deadline = time.monotonic() + DIAL_DEADLINE_S
    while time.monotonic() < deadline:
        urls = fleet.urls()
        if not urls:
            time.sleep(0.1)
            continue
        outcome.attempts += 1
        # Some attempts give up almost at once: the answer is dropped on the CRM's side.
        timeout = 0.01 if rng.random() < 0.1 else 10.0
        try:
            with httpx.Client(timeout=timeout) as http:
                answer = http.post(f"{rng.choice(urls)}/v1/calls", json=body, headers=headers)
        except httpx.HTTPError as exc:
            outcome.answers[type(exc).__name__] += 1
            time.sleep(0.05)
            continue
        outcome.answers[str(answer.status_code)] += 1
        body_json = (
            answer.json() if answer.headers.get("content-type") == "application/json" else {}
        )
        # A refusal (nothing was sent) is a 4xx with the call inside: an answer, not a retry.
        call = body_json.get("call") if answer.status_code >= 400 else body_json
        if answer.status_code == 202 or isinstance(call, dict):
            assert isinstance(call, dict)
            outcome.status, outcome.call_id = call["status"], call["id"]
            return outcome
        if answer.status_code in (409, 429, 503) or answer.status_code >= 500:
            time.sleep(0.1)
            continue
        raise AssertionError(f"dial {index}: unexpected {answer.status_code} {answer.text}")
    return outcome


@pytest.fixture
def two_replica_emulator(tmp_path: Path) -> Iterator[EmulatorServer]:
    fixture = json.loads(
        (Path(gcdial_pkg.__file__).parent / "emulator/default_fixture.json").read_text()
    )
    fixture["generate_agents"] = {"count": AGENTS, "email_domain": "replicas.example.com"}
    path = tmp_path / "org.json"
    path.write_text(json.dumps(fixture))
    config = EmulatorConfig(
        fixture=path,
        speed=200,
        admin=True,
        rate_limit_per_minute=1_000_000,
        seed=11,
    )
    with EmulatorServer(config) as server:
        yield server


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_replicas_under_faults_never_ring_twice_and_lose_no_webhook(
    pg_url: str, two_replica_emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator = two_replica_emulator
    # A short settle time: the killed replica's dials are settled by the other's ladder (a
    # retry meanwhile is a 409) within the CRM's deadline.
    env = replica_env(emulator, pg_url, tmp_path, GCDIAL_ANALYTICS_SETTLE_S="3")
    crm_key = _keys_create(env, "crm", "dial,watch")
    admin_key = _keys_create(env, "ops", "admin")
    fleet = Fleet(env, tmp_path)
    with Receiver() as receiver:
        try:
            first = fleet.start("a")
            fleet.start("b")
            registered = httpx.post(
                f"{first.url}/v1/webhooks",
                json={"url": receiver.url},
                headers={"Authorization": f"Bearer {admin_key}"},
                timeout=10,
            )
            assert registered.status_code == 201, registered.text
            receiver.secret = registered.json()["secret"]
            emulator.add_fault(route="create_call", mode="drop_after_create", probability=0.05)
            emulator.add_fault(route="create_call", mode="status", status=503, probability=0.05)

            started = time.monotonic()
            rng = random.Random(7)
            seeds = [rng.randrange(1 << 30) for _ in range(DIALS)]
            with ThreadPoolExecutor(WORKERS) as pool:
                futures = [
                    pool.submit(_crm_dial, fleet, crm_key, i, random.Random(seeds[i]))
                    for i in range(DIALS)
                ]
                # Kill replica a with -9 while dials are in flight, then bring it back.
                while sum(f.done() for f in futures) < DIALS // 3:
                    time.sleep(0.05)
                fleet.kill("a")
                time.sleep(1.0)
                fleet.start("a2")
                outcomes = [f.result() for f in futures]
            print(f"dials done in {time.monotonic() - started:.1f}s")
            unanswered = [o for o in outcomes if not o.status]
            assert not unanswered, _explain(pg_url, unanswered)
            _assert_no_duplicate_calls(emulator, outcomes)
            assert emulator.overlaps()["total"] == 0, emulator.overlaps()
            _assert_every_event_delivered(pg_url, receiver)
            _assert_killed_dials_settled_by_evidence(pg_url)
            print(f"all delivered at {time.monotonic() - started:.1f}s")
        finally:
            fleet.stop_all()


def _explain(pg_url: str, unanswered: list[Outcome]) -> str:
    lines = [f"{len(unanswered)} dials with no answer in {DIAL_DEADLINE_S}s:"]
    with psycopg.connect(pg_url) as conn:
        for outcome in unanswered[:5]:
            key = f"crm-dial-{outcome.index}"
            claim = conn.execute(
                "SELECT state, owner, call_id, created_at FROM idempotency WHERE key = %s", (key,)
            ).fetchone()
            call = conn.execute(
                "SELECT status, detail FROM calls WHERE idempotency_key = %s", (key,)
            ).fetchone()
            lines.append(f"  {key}: answers {dict(outcome.answers)}; claim {claim}; call {call}")
            # A 409 without a claim is agent_busy: say which call holds the agent, and how.
            holder = conn.execute(
                "SELECT l.call_id, l.owner, l.expires_at, c.status, c.outcome, c.source, "
                "c.conversation_id, c.detail FROM live_agents l LEFT JOIN calls c "
                "ON c.id = l.call_id WHERE l.agent = ("
                "SELECT agent_id FROM calls WHERE agent = %s AND agent_id IS NOT NULL LIMIT 1)",
                (_agent(outcome.index),),
            ).fetchone()
            lines.append(f"    agent {_agent(outcome.index)} held by {holder}")
    return "\n".join(lines)


def _assert_no_duplicate_calls(emulator: EmulatorServer, outcomes: list[Outcome]) -> None:
    ledger = Counter(
        str((call["body"].get("attributes") or {}).get("crmDial"))
        for call in emulator.calls_created()
    )
    duplicates = {dial: n for dial, n in ledger.items() if n > 1}
    assert not duplicates, f"dials that rang twice: {duplicates}"
    for outcome in outcomes:
        rang = ledger.get(str(outcome.index), 0)
        if outcome.status == "placed":
            assert rang == 1, f"dial {outcome.index} answered placed, {rang} calls in the ledger"
        elif outcome.status in ("not_placed", "refused"):
            assert rang == 0, f"dial {outcome.index} answered {outcome.status} but it rang"
    statuses = Counter(o.status for o in outcomes)
    # The faults really happened: some dials ended unknown or not placed, most were placed.
    assert statuses["placed"] > DIALS // 2, statuses
    assert statuses["unknown"] + statuses["not_placed"] > 0, statuses
    retried = sum(1 for o in outcomes if o.attempts > 1)
    assert retried > 0


def _assert_killed_dials_settled_by_evidence(pg_url: str) -> None:
    """The killed replica's dials that were out were settled by the other replica's ladder,
    each ``placed`` or ``not_placed`` (the ledger check above judged them): none left unknown."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT type, data FROM events WHERE type LIKE 'call.%'").fetchall()
    recovered = Counter(t for t, data in rows if json.loads(data).get("recovered"))
    print(f"the killed replica's dials settled by the ladder: {dict(recovered)}")
    assert recovered["call.unknown"] == 0, recovered


def _assert_every_event_delivered(pg_url: str, receiver: Receiver) -> None:
    deadline = time.monotonic() + 60
    missing: set[str] = set()
    while time.monotonic() < deadline:
        with psycopg.connect(pg_url) as conn:
            events = {f"evt_{row[0]}" for row in conn.execute("SELECT id FROM events")}
            dead = conn.execute("SELECT count(*) FROM outbox WHERE state = 'dead'").fetchone()
        missing = events - receiver.ids()
        if not missing:
            break
        time.sleep(0.5)
    assert dead == (0,)
    if missing:
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute(
                "SELECT o.*, e.type, e.at FROM outbox o JOIN events e ON e.id = o.event_id "
                "WHERE 'evt_' || o.event_id = ANY(%s)",
                (sorted(missing)[:5],),
            ).fetchall()
        print("\n".join(map(str, rows)))
    assert not missing, f"{len(missing)} events never delivered, e.g. {sorted(missing)[:5]}"
    assert receiver.bad_signatures == 0, receiver.bad
    # Each dial made at least one event (placing, then its result).
    assert len(events) >= DIALS
