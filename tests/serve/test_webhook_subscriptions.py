"""Webhook endpoints choose their event types, show their deliveries, get dead letters again
on request, and can be sent a signed ping: over HTTP against the service under uvicorn."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest

from gcdial.serve.config import ServeConfig
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


# Retries a second apart (the usual tests' are 0.2-0.8 s): long enough for the listing to be
# read while a failed delivery waits for its next try.
SLOW_RETRIES = ServeConfig(
    webhook_schedule=(1.0, 1.0, 1.0),
    sse_poll_s=0.2,
    webhook_poll_s=0.1,
    resolve_timeout_s=3,
    allow_insecure_webhooks=True,
)


@pytest.mark.parametrize("serve_config", [SLOW_RETRIES])
def test_deliveries_dead_letters_and_redelivery(
    running: Running, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    state.fail_first = 10_000
    hook = _register(running, {"url": url, "events": ["call.placed"]}).json()
    admin = running.headers(running.admin_key)
    running.dial({"agent": ALICE, "to": "+14155550100"}, "sub-dead")
    pending_seen: list[tuple[float, dict[str, Any]]] = []

    def dead() -> list[dict[str, Any]]:
        answer = running.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=admin)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["deliveries"]
        read = time.time()
        pending_seen.extend((read, d) for d in found if d["state"] == "pending")
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
    # While it waited, the listing showed its failed attempts and when the next would be.
    retrying = [(read, p) for read, p in pending_seen if p["attempts"] >= 1]
    assert retrying, pending_seen
    for read, waiting in retrying:
        assert waiting["lastError"] == "HTTP 500"
        next_try = datetime.fromisoformat(waiting["nextAttemptAt"]).timestamp()
        assert read - 1.5 < next_try < read + 1.5, (read, waiting)
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
