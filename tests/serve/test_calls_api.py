"""POST /v1/calls and friends over HTTP, against the emulator: idempotency, statuses, outcome."""

from __future__ import annotations

import uuid

from .conftest import Running

ALICE = "alice@example.com"
ANSWERS = "+14155550100"  # the sandbox answers numbers ending 00-49


def test_dial_places_once_and_replays(running: Running) -> None:
    body = {"agent": ALICE, "to": ANSWERS}
    first = running.dial(body, "key-1")
    assert first.status_code == 202, first.text
    call = first.json()
    assert call["status"] == "placed"
    assert call["conversationId"]
    assert call["agentId"] == "11111111-1111-4111-8111-111111111111"
    assert first.headers["location"] == f"/v1/calls/{call['id']}"
    assert "idempotent-replayed" not in first.headers
    again = running.dial(body, "key-1")
    assert again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == call
    assert len(running.emulator.calls_created()) == 1
    other = running.dial({"agent": ALICE, "to": "+14155550101"}, "key-1")
    assert other.status_code == 422
    assert other.json()["error"]["type"] == "idempotency_key_reused"
    assert len(running.emulator.calls_created()) == 1


def test_call_is_followed_to_its_outcome(running: Running) -> None:
    call = running.dial({"agent": ALICE, "to": ANSWERS}, str(uuid.uuid4())).json()
    over = running.wait_call(call["id"], lambda c: c["ended"])
    assert over["outcome"] == "answered"
    assert over["status"] == "placed"
    listed = running.http.get("/v1/calls?status=placed", headers=running.headers()).json()
    assert [c["id"] for c in listed["calls"]] == [call["id"]]
    audit = [(e.action, e.result) for e in running.store.list_audit()]
    assert ("dial", "placed") in audit
    assert ("verdict", "answered") in audit


def test_agent_not_ready_is_refused_without_dialing(running: Running) -> None:
    """A refusal is a 409 problem naming the reason, with the call inside (a CRM that checks
    only for 2xx must not believe the phone rang); a replay of its key gets the same 409."""
    body = {"agent": "dave@example.com", "to": ANSWERS}
    answer = running.dial(body, "k-dave")
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert (error["type"], error["path"]) == ("agent_not_ready", "$.agent")
    assert "station" in error["message"].lower()
    call = answer.json()["call"]
    assert call["status"] == "refused"
    assert call["ended"] is True
    assert "station" in call["detail"].lower()
    assert answer.headers["location"] == f"/v1/calls/{call['id']}"
    replay = running.dial(body, "k-dave")
    assert replay.status_code == 409
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == answer.json()
    assert running.emulator.calls_created() == []


def test_missing_and_overlong_keys_are_400(running: Running) -> None:
    body = {"agent": ALICE, "to": ANSWERS}
    missing = running.http.post("/v1/calls", json=body, headers=running.headers())
    assert missing.status_code == 400
    assert missing.json()["error"]["path"] == "header:Idempotency-Key"
    long = running.dial(body, "x" * 256)
    assert long.status_code == 400
    assert long.json()["error"]["type"] == "idempotency_key_invalid"
    assert running.emulator.calls_created() == []


def test_other_keys_calls_are_invisible(running: Running) -> None:
    call = running.dial({"agent": ALICE, "to": ANSWERS}, "mine").json()
    other = running.make_key("other")
    seen = running.http.get(f"/v1/calls/{call['id']}", headers=running.headers(other))
    assert seen.status_code == 404
    assert (
        running.http.get(
            f"/v1/calls/{call['id']}", headers=running.headers(running.admin_key)
        ).status_code
        == 200
    )
    # The same Idempotency-Key under another API key is another call.
    assert (
        running.dial({"agent": ALICE, "to": ANSWERS}, "mine", key=other).json()["id"] != call["id"]
    )


def test_hang_up(running: Running) -> None:
    call = running.dial({"agent": ALICE, "to": "+14155550149"}, "hang").json()
    gone = running.http.delete(f"/v1/calls/{call['id']}", headers=running.headers())
    assert gone.status_code == 202, gone.text
    over = running.wait_call(call["id"], lambda c: c["ended"])
    assert over["outcome"] is not None
    assert ("hangup", "ok") in [(e.action, e.result) for e in running.store.list_audit()]
