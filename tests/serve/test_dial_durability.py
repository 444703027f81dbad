"""A served dial's writes before its create-call: the key's claim and the call's row are on disk
before the POST leaves (the one sync, taken while the dial looks its agent up), and a row that
cannot be written sends nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gcdial.serve.sqlite_store import SqliteStore
from gcdial.serve.store import CallRecord, StoreError

from .conftest import Running

ALICE = "alice@example.com"
ANSWERS = "+14155550100"  # the sandbox answers numbers ending 00-49


def _hold_row(running: Running, then: Callable[[], Any]) -> list[tuple[bool, int]]:
    """Make the store's ``insert_call`` wait a moment before it writes, noting whether it was
    asked for a durable write and how many calls the emulator had been sent meanwhile."""
    real = running.store.insert_call
    seen: list[tuple[bool, int]] = []

    def held(call: CallRecord, *, durable: bool = False) -> None:
        time.sleep(0.3)  # a create-call that did not wait for the row would arrive meanwhile
        seen.append((durable, len(running.emulator.calls_created())))
        then()
        real(call, durable=durable)

    running.store.insert_call = held  # type: ignore[method-assign]
    return seen


def test_the_create_call_leaves_only_once_the_row_is_durable(running: Running) -> None:
    seen = _hold_row(running, lambda: None)
    answer = running.dial({"agent": ALICE, "to": ANSWERS}, str(uuid.uuid4()))
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "placed"
    assert seen == [(True, 0)]  # asked to sync, and nothing had been sent while it was held
    assert len(running.emulator.calls_created()) == 1


def test_a_row_that_cannot_be_written_sends_nothing(running: Running) -> None:
    def fail() -> None:
        raise StoreError("the disk is full")

    _hold_row(running, fail)
    idem = str(uuid.uuid4())
    answer = running.dial({"agent": ALICE, "to": ANSWERS}, idem)
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["type"] == "store_unavailable"
    assert running.emulator.calls_created() == []
    # The key stays claimed (recovery answers it not_placed): a retry does not dial.
    again = running.dial({"agent": ALICE, "to": ANSWERS}, idem)
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "idempotency_key_in_progress"
    assert running.emulator.calls_created() == []


def _statements(store: SqliteStore, work: Callable[[], Any]) -> list[str]:
    seen: list[str] = []
    store._db.set_trace_callback(seen.append)
    try:
        work()
    finally:
        store._db.set_trace_callback(None)
    return seen


def _call(call_id: str) -> CallRecord:
    return CallRecord(
        id=call_id, api_key_id="k", agent=ALICE, to=ANSWERS, status="placing",
        idempotency_key=call_id, created_at=1.0, updated_at=1.0,
    )  # fmt: skip


def test_sqlite_syncs_the_claim_or_the_row_as_asked(tmp_path: Path) -> None:
    """A claim is synced by default; the dial's claim is not, and its row is synced instead
    (one sync for both: the log is written in order)."""
    store = SqliteStore(tmp_path / "serve.sqlite3")
    try:
        full = "PRAGMA synchronous=FULL"

        def claim(key: str, **kw: Any) -> Callable[[], Any]:
            return lambda: store.claim_idempotency("k", key, "fp", key, now=1.0, ttl_s=60, **kw)

        assert full in _statements(store, claim("a"))
        assert full not in _statements(store, claim("b", durable=False))
        assert full in _statements(store, lambda: store.insert_call(_call("b"), durable=True))
        assert full not in _statements(store, lambda: store.insert_call(_call("c")))
        assert store.get_call("b") is not None
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    finally:
        store.close()


def test_a_dial_looks_its_agent_up_once(running: Running) -> None:
    """The dial's own check of the agent is the only user search it makes: the first dial of
    an agent (whose id keys its row among live calls) and the next one (the id is known)."""

    def searches() -> int:
        counts: dict[str, int] = running.emulator.request_counts()["byRoute"]
        return counts.get("POST /api/v2/users/search", 0)

    before = searches()
    first = running.dial({"agent": ALICE, "to": ANSWERS}, str(uuid.uuid4()))
    assert first.status_code == 202, first.text
    assert searches() - before == 1
    running.wait_call(first.json()["id"], lambda c: c["ended"])
    deadline = time.monotonic() + 10
    while running.store.live_agents(now=time.time()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the agent is freed just after the call's end shows
    before = searches()
    second = running.dial({"agent": ALICE, "to": ANSWERS}, str(uuid.uuid4()))
    assert second.status_code == 202, second.text
    assert second.json()["agentId"] == first.json()["agentId"]
    assert searches() - before == 1
