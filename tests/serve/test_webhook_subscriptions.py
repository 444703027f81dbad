"""Webhook endpoints choose their event types, show their deliveries, get dead letters again
on request, and can be sent a signed ping: over HTTP against the service under uvicorn."""

from __future__ import annotations

import json
import time
from typing import Any

from gcdial.serve.signing import verify

from .conftest import Running
from .test_events_webhooks import Receiver, _wait, receiver

__all__ = ["receiver"]  # the fixture, used here by name

ALICE = "alice@example.com"


def _register(running: Running, body: dict[str, Any]) -> Any:
    return running.http.post("/v1/webhooks", json=body, headers=running.headers(running.admin_key))


def _types(state: Receiver) -> list[str]:
    return [json.loads(got["body"])["type"] for got in state.got]


def test_an_endpoint_gets_only_the_event_types_it_chose(
    running: Running, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    made = _register(running, {"url": url, "events": ["call.ended", "call.placed"]})
    assert made.status_code == 201, made.text
    assert made.json()["events"] == ["call.placed", "call.ended"]
    listed = running.http.get("/v1/webhooks", headers=running.headers(running.admin_key))
    assert listed.json()[0]["events"] == ["call.placed", "call.ended"]
    call = running.dial({"agent": ALICE, "to": "+14155550100"}, "sub-1").json()
    running.wait_call(call["id"], lambda c: c["ended"])
    _wait(lambda: "call.ended" in _types(state))
    time.sleep(0.5)  # any stray delivery of another type would have come by now
    assert _types(state) == ["call.placed", "call.ended"]


def test_an_unknown_event_type_is_a_422_naming_it(running: Running) -> None:
    answer = _register(
        running, {"url": "http://127.0.0.1:9/x", "events": ["call.ended", "call.rang"]}
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["path"].startswith("$.events")
    assert "call.rang" in error["message"]
    assert _register(running, {"url": "http://127.0.0.1:9/x", "events": []}).status_code == 422


def test_deliveries_dead_letters_and_redelivery(
    running: Running, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    state.fail_first = 10_000
    hook = _register(running, {"url": url, "events": ["call.placed"]}).json()
    admin = running.headers(running.admin_key)
    running.dial({"agent": ALICE, "to": "+14155550100"}, "sub-dead")
    pending_seen: list[dict[str, Any]] = []

    def dead() -> list[dict[str, Any]]:
        answer = running.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=admin)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["deliveries"]
        pending_seen.extend(d for d in found if d["state"] == "pending")
        return [d for d in found if d["state"] == "dead"]

    _wait(lambda: bool(dead()))
    (letter,) = dead()
    assert (letter["type"], letter["attempts"], letter["lastError"]) == (
        "call.placed",
        4,
        "HTTP 500",
    )
    assert letter["nextAttemptAt"] is None
    assert letter["doneAt"]
    assert all(p["nextAttemptAt"] for p in pending_seen)
    only_dead = running.http.get(
        f"/v1/webhooks/{hook['id']}/deliveries?state=dead", headers=admin
    ).json()["deliveries"]
    assert [d["id"] for d in only_dead] == [letter["id"]]
    # The receiver is fixed; the dead letter goes again, with its webhook-id.
    state.fail_first = 0
    base = f"/v1/webhooks/{hook['id']}/deliveries/{letter['id']}/redeliver"
    assert running.http.post(base, headers=admin).status_code == 202
    _wait(lambda: bool(state.got))
    assert state.got[0]["headers"]["webhook-id"] == letter["eventId"]
    _wait(
        lambda: (
            running.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=admin).json()[
                "deliveries"
            ][0]["state"]
            == "delivered"
        )
    )
    again = running.http.post(base, headers=admin)
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "not_dead"
    assert (
        running.http.post(
            f"/v1/webhooks/wh_nothere/deliveries/{letter['id']}/redeliver", headers=admin
        ).status_code
        == 404
    )
    assert (
        running.http.get(
            f"/v1/webhooks/{hook['id']}/deliveries", headers=running.headers()
        ).status_code
        == 403
    )


def test_a_test_ping_is_signed_and_says_what_the_receiver_did(
    running: Running, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    hook = _register(running, {"url": url, "events": ["call.ended"]}).json()
    admin = running.headers(running.admin_key)
    answer = running.http.post(f"/v1/webhooks/{hook['id']}/test", headers=admin)
    assert answer.status_code == 200, answer.text
    assert answer.json()["delivered"] is True
    (got,) = state.got
    h = got["headers"]
    assert h["webhook-id"] == answer.json()["eventId"]
    assert verify(hook["secret"], h["webhook-id"], h["webhook-timestamp"], got["body"],
                  h["webhook-signature"], now=time.time())  # fmt: skip
    assert json.loads(got["body"])["data"] == {"type": "webhook.ping", "webhook": hook["id"]}
    state.fail_first = state.attempts + 1
    failed = running.http.post(f"/v1/webhooks/{hook['id']}/test", headers=admin).json()
    assert (failed["delivered"], failed["error"]) == (False, "HTTP 500")
