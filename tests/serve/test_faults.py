"""Genesys misbehaving under the service: never a second call, always a clear status."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .conftest import Running

ALICE = "alice@example.com"
ANSWERS = "+14155550100"


def test_dropped_create_answer_is_resolved_not_redialed(running: Running) -> None:
    running.emulator.add_fault(route="create_call", mode="drop_after_create", count=1)
    first = running.dial({"agent": ALICE, "to": ANSWERS}, "drop-1")
    assert first.status_code == 202, first.text
    call = first.json()
    # The call exists in Genesys: the dialing core's ladder finds it (or says unknown), and
    # never says not_placed.
    assert call["status"] in ("placed", "unknown")
    assert len(running.emulator.calls_created()) == 1
    # The CRM retries the same key: the same answer, no second call.
    again = running.dial({"agent": ALICE, "to": ANSWERS}, "drop-1")
    assert again.json()["id"] == call["id"]
    assert len(running.emulator.calls_created()) == 1


def test_503_on_create_is_never_not_placed(running: Running) -> None:
    running.emulator.add_fault(route="create_call", mode="status", status=503, count=1)
    call = running.dial({"agent": ALICE, "to": ANSWERS}, "503").json()
    assert call["status"] in ("unknown", "not_placed")
    created = len(running.emulator.calls_created())
    if call["status"] == "not_placed":
        assert created == 0  # only when provably nothing was placed
    assert created <= 1


def test_429_on_create_is_waited_out_and_placed_once(running: Running) -> None:
    running.emulator.add_fault(
        route="create_call", mode="status", status=429, retry_after=0.2, count=2
    )
    call = running.dial({"agent": ALICE, "to": ANSWERS}, "429").json()
    assert call["status"] == "placed"
    assert len(running.emulator.calls_created()) == 1


def test_concurrent_retries_of_one_key_dial_once(running: Running) -> None:
    running.emulator.add_fault(route="create_call", mode="latency", seconds=0.5, count=1)
    body = {"agent": ALICE, "to": ANSWERS}
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: running.dial(body, "same"), range(6)))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(202) >= 1
    assert set(codes) <= {202, 409}
    conflict = next((a for a in answers if a.status_code == 409), None)
    if conflict is not None:
        assert conflict.json()["error"]["type"] == "idempotency_key_in_progress"
    assert len(running.emulator.calls_created()) == 1
    assert len({a.json()["id"] for a in answers if a.status_code == 202}) == 1
