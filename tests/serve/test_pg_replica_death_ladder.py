"""A replica killed with -9 while its dials wait on Genesys: the other replica settles each one.

Two ``gcdial serve`` replicas on one PostgreSQL. Replica A takes ten keyed dials whose
create-call hangs at the emulator: five after the emulator created the call, five without
creating it. A is killed with -9 while all ten are out. Replica B, which has been watching the
agents of the dials in flight, finds the stale claims and runs the resolution ladder on each
attempt. The emulator's ledger is the judge: within a bounded time every call is ``placed`` if
and only if the emulator created it (with that conversation id), else ``not_placed``; nothing is
sent twice; each key answers its verdict on a retry; the placed calls are followed to their end.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

import gcdial as gcdial_pkg
from gcdial.emulator import EmulatorConfig, EmulatorServer
from pgcluster import replica_env
from serve.test_pg_two_replicas import Fleet, _keys_create

DIALS = 10
SETTLE_S = 2  # real seconds (the settings' analytics_settle_s)
# Every call is settled this long after the kill at most: stale claim (4 s) + a recovery round
# (2 s) + one settle time, with room for a loaded machine.
SETTLED_WITHIN_S = 40


@pytest.fixture
def hanging_emulator(tmp_path: Path) -> Iterator[EmulatorServer]:
    fixture = json.loads(
        (Path(gcdial_pkg.__file__).parent / "emulator/default_fixture.json").read_text()
    )
    fixture["generate_agents"] = {"count": DIALS, "email_domain": "ladder.example.com"}
    path = tmp_path / "org.json"
    path.write_text(json.dumps(fixture))
    config = EmulatorConfig(
        fixture=path, speed=200, admin=True, rate_limit_per_minute=1_000_000, seed=5
    )
    with EmulatorServer(config) as server:
        server.set_analytics(ingestion_delay=5)  # simulated seconds: 25 ms real at speed 200
        yield server


def _rows(pg_url: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT idempotency_key, id, status, conversation_id, outcome, detail FROM calls"
        ).fetchall()
    names = ("id", "status", "conversation", "outcome", "detail")
    return {str(r[0]): dict(zip(names, r[1:], strict=True)) for r in rows}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_killed_replicas_dials_are_settled_by_evidence(
    pg_url: str, hanging_emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator = hanging_emulator
    env = replica_env(emulator, pg_url, tmp_path, GCDIAL_ANALYTICS_SETTLE_S=str(SETTLE_S))
    key = _keys_create(env, "crm", "dial,watch")
    fleet = Fleet(env, tmp_path)
    try:
        a = fleet.start("a")
        b = fleet.start("b")
        # The first five create-calls are created and then hang; the next five hang uncreated.
        emulator.add_fault(
            route="create_call", mode="hang_after_create", seconds=120, count=DIALS // 2
        )
        emulator.add_fault(
            route="create_call", mode="hang_without_create", seconds=120, count=DIALS // 2
        )

        def dial(i: int) -> None:
            body = {
                "agent": f"agent{i + 1:03d}@ladder.example.com",
                "to": f"+1415555{100 + i:04d}",
                "attributes": {"crmDial": str(i)},
            }
            headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"ladder-{i}"}
            with contextlib.suppress(httpx.HTTPError):  # replica A dies under it
                httpx.post(f"{a.url}/v1/calls", json=body, headers=headers, timeout=60)

        threads = [threading.Thread(target=dial, args=(i,), daemon=True) for i in range(DIALS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(emulator.fault_ledger()) < DIALS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(emulator.fault_ledger()) == DIALS, emulator.fault_ledger()
        placing = [r for r in _rows(pg_url).values() if r["status"] == "placing"]
        assert len(placing) == DIALS, _rows(pg_url)
        time.sleep(1.0)  # B's watcher reads the dials in flight every second or so
        fleet.kill("a")
        killed = time.monotonic()
        for thread in threads:
            thread.join(timeout=10)

        rows: dict[str, dict[str, Any]] = {}
        while time.monotonic() - killed < SETTLED_WITHIN_S:
            rows = _rows(pg_url)
            if all(r["status"] in ("placed", "not_placed") for r in rows.values()):
                break
            time.sleep(0.2)
        settled_in = time.monotonic() - killed
        print(f"all {DIALS} settled {settled_in:.1f}s after the kill")
        statuses = {k: r["status"] for k, r in rows.items()}
        assert all(s in ("placed", "not_placed") for s in statuses.values()), rows

        # The ledger is the judge: placed iff created, with that conversation; never twice.
        created: dict[str, str] = {}
        for call in emulator.calls_created():
            dial_no = str((call["body"].get("attributes") or {}).get("crmDial"))
            assert dial_no not in created, f"dial {dial_no} was created twice"
            created[dial_no] = call["id"]
        assert len(created) == DIALS // 2, created
        for i in range(DIALS):
            row = rows[f"ladder-{i}"]
            if str(i) in created:
                assert row["status"] == "placed", row
                assert row["conversation"] == created[str(i)], row
            else:
                assert row["status"] == "not_placed", row
                assert "not placed" in row["detail"], row

        # Each key answers its verdict on a retry (on the surviving replica), dialing nothing.
        for i in range(DIALS):
            answer = httpx.post(
                f"{b.url}/v1/calls",
                json={
                    "agent": f"agent{i + 1:03d}@ladder.example.com",
                    "to": f"+1415555{100 + i:04d}",
                    "attributes": {"crmDial": str(i)},
                },
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": f"ladder-{i}"},
                timeout=30,
            )
            assert answer.status_code == 202, answer.text
            assert answer.json()["status"] == rows[f"ladder-{i}"]["status"]
        assert len(emulator.calls_created()) == DIALS // 2

        # The verdicts were published (SSE and webhooks read these), marked as recovered.
        with psycopg.connect(pg_url) as conn:
            events = conn.execute(
                "SELECT type, data FROM events WHERE type IN ('call.placed', 'call.not_placed')"
            ).fetchall()
        recovered = [json.loads(data) for _, data in events if json.loads(data).get("recovered")]
        assert len(recovered) == DIALS, events

        # The placed calls are followed to their end like any placed call.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = _rows(pg_url)
            if all(r["outcome"] for r in rows.values() if r["status"] == "placed"):
                break
            time.sleep(0.2)
        assert all(r["outcome"] for r in rows.values() if r["status"] == "placed"), rows
    finally:
        fleet.stop_all()
