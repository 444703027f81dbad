"""One live call per agent across the service: the API, the page and the service's campaigns.

The emulator's overlap ledger (``GET /_emulator/overlaps``: every create-call for an agent whose
phone had a live call then) is the judge; the emulator lets such a call through
(``busy_agent_calls`` allow), so an overlap the service let happen would be counted.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from gcdial.serve.store import hash_api_key

from .conftest import Running

ALICE = "alice@example.com"
ALICE_ID = "11111111-1111-4111-8111-111111111111"


def _placed(running: Running, answer: Any) -> dict[str, Any]:
    assert answer.status_code == 202, answer.text
    return running.wait_call(answer.json()["id"], lambda c: c["status"] != "placing")


def test_a_second_dial_for_a_busy_agent_is_409_naming_the_live_call(running: Running) -> None:
    running.emulator.set_speed(5)  # the first call lives about 7 s: 2 s ring, 4 s, 10 s + 20 s
    first = _placed(running, running.dial({"agent": ALICE, "to": "+14155550120"}, "one"))
    assert first["status"] == "placed", first
    time.sleep(3)
    # By id this time: the agent's row is keyed by the Genesys user id, not the name given.
    second = running.dial({"agent": ALICE_ID, "to": "+14155550121"}, "two")
    assert second.status_code == 409, second.text
    body = second.json()
    assert body["error"]["type"] == "agent_busy"
    assert first["id"] in body["error"]["message"]
    assert body["liveCall"]["id"] == first["id"]
    # A refusal is not the key's answer: the same key is refused again while alice talks...
    assert running.dial({"agent": ALICE_ID, "to": "+14155550121"}, "two").status_code == 409
    assert len(running.emulator.calls_created()) == 1
    assert running.emulator.overlaps()["total"] == 0
    # ...and goes once the first call has ended (its agent row was released).
    ended = running.wait_call(first["id"], lambda c: c.get("outcome") is not None, timeout_s=30)
    assert ended["outcome"] == "answered", ended
    again = _placed(running, running.dial({"agent": ALICE_ID, "to": "+14155550121"}, "two"))
    assert again["status"] == "placed", again
    assert running.emulator.overlaps()["total"] == 0


def test_an_agent_found_busy_after_its_check_leaves_the_key_free(running: Running) -> None:
    """An agent this replica has not looked up yet: its check runs beside the key's claim, and
    its row is claimed after. Found busy then (a live call holds it under its id), the claim
    is undone: 409 naming that call, no call row, and the same key dials once it is free."""
    assert running.store.claim_agent(ALICE_ID, "call_other", owner="x", now=time.time(),
                                     ttl_s=60) is None  # fmt: skip
    body = {"agent": ALICE, "to": "+14155550122"}
    busy = running.dial(body, "later")
    assert busy.status_code == 409, busy.text
    assert busy.json()["liveCall"]["id"] == "call_other"
    assert running.store.get_idempotency(_key_id(running), "later") is None
    assert [c.id for c in running.store.list_calls()] == []
    assert running.emulator.calls_created() == []
    running.store.release_agent("call_other")
    again = _placed(running, running.dial(body, "later"))
    assert again["status"] == "placed", again
    assert len(running.emulator.calls_created()) == 1


def _key_id(running: Running) -> str:
    found = running.store.find_api_key(hash_api_key(running.key))
    assert found is not None
    return found.id


@pytest.mark.timeout(150)  # its own deadline is 90 s: a loaded machine runs it slower
def test_an_api_dial_beside_a_service_campaign_never_overlaps(running: Running) -> None:
    running.emulator.set_speed(50)
    ops = running.make_key("ops", scopes=("campaigns",), rate_per_minute=100_000)
    rows = "".join(f"+141555501{n:02d},c{n}\n" for n in range(10, 16))
    created = running.http.post(
        "/v1/campaigns",
        files={"file": ("contacts.csv", f"phone,name\n{rows}".encode(), "text/csv")},
        data={"agents": ALICE, "window": "00:00-23:59"},
        headers=running.headers(ops),
    )
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    started = running.http.post(f"/v1/campaigns/{cid}/start", headers=running.headers(ops))
    assert started.status_code == 200, started.text
    answers: list[int] = []
    deadline = time.monotonic() + 90
    state = ""
    n = 0
    while time.monotonic() < deadline:
        state = running.http.get(f"/v1/campaigns/{cid}", headers=running.headers(ops)).json()[
            "state"
        ]
        if state in ("finished", "failed"):
            break
        n += 1
        answer = running.dial({"agent": ALICE, "to": "+14155550100"}, f"crm-{n}")
        answers.append(answer.status_code)
        if answer.status_code == 202:
            running.wait_call(answer.json()["id"], lambda c: c.get("outcome") is not None)
        time.sleep(0.2)
    assert state == "finished", state
    assert 409 in answers, answers  # the campaign held alice at some point
    ledger = running.emulator.overlaps()
    assert ledger["total"] == 0, ledger
    campaign_calls = [
        c for c in running.emulator.calls_created() if c["phoneNumber"] != "+14155550100"
    ]
    assert len(campaign_calls) == 6


def _ended(running: Running, answer: Any) -> dict[str, Any]:
    placed = _placed(running, answer)
    assert placed["status"] == "placed", placed
    return running.wait_call(placed["id"], lambda c: c.get("outcome") is not None, timeout_s=30)


def test_an_agent_dialed_before_is_followed_on_its_own_topic_without_a_read(
    running: Running,
) -> None:
    """The second call of an agent: the claim takes the agent's row under the id its first
    check gave, and the call is followed on the agent's topic, in force since before the POST:
    no subscriptions PUT and no catch-up GET, and its end is still seen, from frames alone."""
    running.emulator.set_speed(50)
    first = _ended(running, running.dial({"agent": ALICE, "to": "+14155550130"}, "first"))
    assert first["outcome"] == "answered", first
    before = running.emulator.request_counts()["byRoute"]
    # The first call of the agent took both: its topic, then a read for the frames before it.
    assert before["PUT /api/v2/notifications/channels/{channelId}/subscriptions"] >= 1, before
    assert before["GET /api/v2/conversations/calls/{conversationId}"] >= 1, before
    second = _ended(running, running.dial({"agent": ALICE, "to": "+14155550131"}, "second"))
    assert second["outcome"] == "answered", second
    after = running.emulator.request_counts()["byRoute"]
    grown = {route: after[route] - before.get(route, 0) for route in after}
    assert grown.get("PUT /api/v2/notifications/channels/{channelId}/subscriptions", 0) == 0, grown
    assert grown.get("GET /api/v2/conversations/calls/{conversationId}", 0) == 0, grown
    assert (
        grown.get("POST /api/v2/conversations/calls", 0)
        + grown.get("POST /api/v2/conversations/calls/user/{userId}", 0)
        == 1
    ), grown
    assert running.emulator.overlaps()["total"] == 0


def test_a_remembered_agent_id_the_check_does_not_confirm_is_given_back(
    running: Running,
) -> None:
    """The claim takes the agent's row under the id the last check gave (remembered by the
    service); when the check now gives another id (the email moved to another user), that row
    is given back and the right one taken before anything is sent: alice, busy under her id,
    is not dialed."""
    dials = running.server.app.state.service.dials
    dials._remember_agent_id(ALICE, "99999999-9999-4999-8999-999999999999")
    now = time.time()
    assert running.store.claim_agent(ALICE_ID, "call_other", owner="x", now=now, ttl_s=60) is None
    busy = running.dial({"agent": ALICE, "to": "+14155550132"}, "moved")
    assert busy.status_code == 409, busy.text
    assert busy.json()["liveCall"]["id"] == "call_other"
    assert running.store.live_agents(now=time.time()) == {ALICE_ID: "call_other"}
    assert running.emulator.calls_created() == []
    running.store.release_agent("call_other")
    again = _placed(running, running.dial({"agent": ALICE, "to": "+14155550132"}, "moved"))
    assert again["status"] == "placed", again
    assert running.store.live_agents(now=time.time()) == {ALICE_ID: again["id"]}
