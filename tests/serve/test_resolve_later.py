"""A call answered ``unknown`` is resolved by evidence in the background, never re-sent."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gcdial.client import AsyncClient
from gcdial.config import Settings
from gcdial.emulator import EmulatorServer
from gcdial.serve.app import create_app
from gcdial.serve.config import ServeConfig
from gcdial.serve.keys import new_api_key
from gcdial.serve.server import ServeServer
from gcdial.serve.sqlite_store import SqliteStore

ALICE = "alice@example.com"
ANSWERS = "+14155550100"
SETTLE_S = 2.0  # real seconds: the service runs on the real clock


@pytest.fixture
def service(emulator: EmulatorServer, tmp_path: Path) -> Iterator[tuple[httpx.Client, SqliteStore]]:
    """The service with a short settle time, answering ``unknown`` at once after a lost answer."""
    emulator.set_analytics(ingestion_delay=5)  # simulated seconds: 0.1 s real at speed 50
    settings = Settings.model_validate(
        {
            "api_base_url": emulator.base_url,
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "analytics_settle_s": SETTLE_S,
        }
    )
    store = SqliteStore(tmp_path / "serve.sqlite3")
    config = ServeConfig(sse_poll_s=0.2, resolve_timeout_s=0.05, resolve_later_s=30)
    app = create_app(store, lambda: AsyncClient(settings), config, single_process=True)
    server = ServeServer(app).start()
    made = new_api_key("crm", now=time.time(), scopes=("dial", "watch"))
    store.add_api_key(made.record)
    headers = {"Authorization": f"Bearer {made.key}"}
    try:
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
            yield http, store
    finally:
        server.stop()
        store.close()


def _settled(http: httpx.Client, call_id: str, timeout_s: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while True:
        call: dict[str, object] = http.get(f"/v1/calls/{call_id}").json()
        if call["status"] != "unknown" or time.monotonic() > deadline:
            return call
        time.sleep(0.1)


@pytest.mark.parametrize("acted", [True, False], ids=["acted", "not-acted"])
def test_an_unknown_call_gets_its_verdict_later(
    service: tuple[httpx.Client, SqliteStore], emulator: EmulatorServer, acted: bool
) -> None:
    http, store = service
    mode = "drop_after_create" if acted else "drop_without_create"
    if acted:
        # No live frames: only the details query, after the settle time, can find the call.
        emulator.add_fault(route="notifications", mode="status", status=403)
    emulator.add_fault(route="create_call", mode=mode, count=1)
    answer = http.post(
        "/v1/calls", json={"agent": ALICE, "to": ANSWERS}, headers={"Idempotency-Key": mode}
    )
    assert answer.status_code == 202, answer.text
    first = answer.json()
    assert first["status"] == "unknown", first
    call = _settled(http, first["id"])
    # Never re-sent: the one create-call is the only one, whatever the verdict.
    assert len(emulator.calls_created()) == (1 if acted else 0)
    if acted:
        assert call["status"] == "placed", call
        assert call["conversationId"] == emulator.calls_created()[0]["id"]
    else:
        assert call["status"] == "not_placed", call
        assert "resolved by evidence" in str(call["detail"])
    events = [json.loads(e.data) for e in store.events_after(0, call_id=first["id"], limit=50)]
    late = [e for e in events if e.get("resolvedLater")]
    assert [e["type"] for e in late] == [f"call.{call['status']}"]
    audit = [a for a in store.list_audit(limit=100) if a.call_id == first["id"]]
    assert [a.result for a in audit if a.action == "resolve"] == [call["status"]]
