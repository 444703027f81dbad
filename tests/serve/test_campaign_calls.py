"""A campaign run by the service shows its attempts as calls: in GET /v1/calls, on SSE (with
resume) and on webhooks; its state changes are ``campaign.updated`` events; hang-up works."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gcdial.campaign.progress import AttemptUpdate
from gcdial.serve.campaign_calls import call_change, campaign_call_id
from gcdial.serve.campaign_journals import CampaignJournals
from gcdial.serve.config import ServeConfig

from .conftest import Running
from .test_events_webhooks import Receiver, _register, _wait, receiver, sse_events

__all__ = ["receiver"]  # the fixture, imported for this module's tests


@pytest.fixture
def serve_config() -> ServeConfig:
    """A campaign's ambiguous create is resolved (or called unknown) within 3 s."""
    return ServeConfig(
        webhook_schedule=(0.2, 0.4, 0.8),
        sse_poll_s=0.2,
        webhook_poll_s=0.1,
        resolve_timeout_s=3,
        campaign_resolve_timeout_s=3,
        allow_insecure_webhooks=True,
    )


ANSWERS = "+14155550100"  # talks 10 s (emulator time)
OTHER = "+14155550103"  # talks 13 s
LONG_TALK = "+14155550149"  # talks 59 s


def _campaign(
    running: Running, key: str, rows: list[str], agents: str = "alice@example.com"
) -> str:
    csv = "phone,external_id\n" + "".join(f"{phone},k{i}\n" for i, phone in enumerate(rows))
    created = running.http.post(
        "/v1/campaigns",
        files={"file": ("spring.csv", csv.encode(), "text/csv")},
        data={"agents": agents, "name": "Spring", "window": "00:00-23:59"},
        headers=running.headers(key),
    )
    assert created.status_code == 201, created.text
    cid: str = created.json()["id"]
    started = running.http.post(f"/v1/campaigns/{cid}/start", headers=running.headers(key))
    assert started.status_code == 200, started.text
    return cid


def _until(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def _calls(running: Running, key: str, **query: str) -> list[dict[str, Any]]:
    answer = running.http.get("/v1/calls", params=query, headers=running.headers(key))
    assert answer.status_code == 200, answer.text
    calls: list[dict[str, Any]] = answer.json()["calls"]
    return calls


def _state(running: Running, key: str, cid: str) -> str:
    state: str = running.http.get(f"/v1/campaigns/{cid}", headers=running.headers(key)).json()[
        "state"
    ]
    return state


def test_campaign_attempts_are_calls_on_the_api_sse_and_webhooks(
    running: Running, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    _register(running, url)
    ops = running.make_key("ops", scopes=("campaigns", "watch"), rate_per_minute=100_000)
    running.dial({"agent": "bob@example.com", "to": ANSWERS}, "api-1")  # the CRM key's own call
    cid = _campaign(running, ops, [ANSWERS, OTHER])
    assert _until(lambda: _state(running, ops, cid), lambda s: s == "finished") == "finished"

    calls = _calls(running, ops)
    assert {c["source"] for c in calls} == {"campaign"}  # the CRM key's call is not ops's
    by_number = {c["to"]: c for c in calls}
    assert set(by_number) == {ANSWERS, OTHER}
    answered = by_number[ANSWERS]
    assert answered["campaign"] == {"id": cid, "name": "Spring"}
    assert answered["status"] == "placed"
    assert answered["outcome"] == "answered"
    assert answered["ended"] is True
    assert answered["conversationId"]
    assert answered["agentId"]
    assert answered["attemptId"] >= 1
    assert answered["contact"] == {"line": 2, "key": "k0"}
    assert by_number[OTHER]["outcome"] == "answered"
    assert answered["id"] == campaign_call_id(cid, answered["attemptId"])
    # Scope: the CRM key sees none of them, the admin sees both sources; filters by source.
    assert all(c["source"] == "api" for c in _calls(running, running.key))
    assert {c["source"] for c in _calls(running, running.admin_key)} == {"api", "campaign"}
    assert len(_calls(running, running.admin_key, source="campaign")) == 2
    assert [c["source"] for c in _calls(running, running.admin_key, source="api")] == ["api"]
    assert len(_calls(running, running.admin_key, campaign=cid)) == 2
    bad = running.http.get("/v1/calls?source=crm", headers=running.headers(ops))
    assert bad.status_code in (400, 422)

    # SSE from the start: every step of both attempts, then the campaign's state changes.
    headers = running.headers(ops, **{"Last-Event-ID": "0"})
    quiet = httpx.Timeout(10, read=1.0)
    with running.http.stream("GET", "/v1/events", headers=headers, timeout=quiet) as response:
        events = _events_until_quiet(response)
    mine = [e for e in events if e["event"].startswith("call.")]
    assert {json.loads(e["data"])["call"]["id"] for e in mine} == {c["id"] for c in calls}
    answered_types = [
        e["event"] for e in mine if json.loads(e["data"])["call"]["id"] == answered["id"]
    ]
    assert answered_types[0] == "call.placing"
    assert answered_types[1] == "call.placed"
    assert "call.progress" in answered_types
    assert answered_types[-1] == "call.ended"
    states = [json.loads(e["data"])["campaign"]["state"] for e in events if e["event"] ==
              "campaign.updated"]  # fmt: skip
    assert states[0] == "running"
    assert states[-1] == "finished"
    assert all("apiKeyId" not in json.loads(e["data"]) for e in events)
    # Resume after the third event: exactly the rest, in order.
    headers = running.headers(ops, **{"Last-Event-ID": events[2]["id"]})
    with running.http.stream("GET", "/v1/events", headers=headers, timeout=10) as response:
        rest = sse_events(response, len(events) - 3)
    assert [e["id"] for e in rest] == [e["id"] for e in events[3:]]

    # Webhooks: the campaign call's end was delivered, signed like any other event.
    def ended_campaign_calls() -> list[dict[str, Any]]:
        bodies = [json.loads(got["body"]) for got in hooks.got]
        return [
            b
            for b in bodies
            if b["type"] == "call.ended" and b["data"]["call"]["source"] == "campaign"
        ]

    _wait(lambda: len(ended_campaign_calls()) == 2)
    assert {b["data"]["call"]["campaign"]["id"] for b in ended_campaign_calls()} == {cid}


def _events_until_quiet(response: httpx.Response) -> list[dict[str, str]]:
    """Events of an SSE stream until it is quiet for the read timeout (the log is drained)."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    try:
        for line in response.iter_lines():
            if not line:
                if current:
                    events.append(current)
                    current = {}
                continue
            if not line.startswith(":"):
                name, _, value = line.partition(":")
                current[name] = value.removeprefix(" ")
    except httpx.ReadTimeout:
        pass
    return events


def test_hanging_up_a_campaign_call_records_its_outcome(running: Running) -> None:
    running.emulator.set_speed(5)  # a 59 s talk lasts 12 s: time to hang up
    ops = running.make_key("ops", scopes=("campaigns", "watch", "dial"), rate_per_minute=100_000)
    cid = _campaign(running, ops, [LONG_TALK])

    def talking() -> str | None:
        for event in running.store.events_after(0):
            data = json.loads(event.data)
            if (data.get("progress") or {}).get("event") == "customer_connected":
                return str(data["call"]["id"])
        return None

    call_id = _until(talking, lambda found: found is not None)
    assert call_id is not None
    hung = running.http.delete(f"/v1/calls/{call_id}", headers=running.headers(ops))
    assert hung.status_code == 202, hung.text
    assert _until(lambda: _state(running, ops, cid), lambda s: s == "finished") == "finished"
    ended = running.http.get(f"/v1/calls/{call_id}", headers=running.headers(ops)).json()
    assert ended["ended"] is True
    assert ended["outcome"] == "answered"
    journal = CampaignJournals.for_store(running.store).read(cid)
    assert journal is not None
    try:
        attempt = next(a for a in journal.attempts.all() if a.id == ended["attemptId"])
    finally:
        journal.close()
    assert attempt.conversation_id == ended["conversationId"]
    assert attempt.outcome == "answered"  # the runner recorded the end it saw, as the call shows
    assert attempt.talk_s is not None
    assert attempt.talk_s < 59


def test_a_campaign_attempt_of_unknown_outcome_shows_as_unknown(running: Running) -> None:
    running.emulator.add_fault(route="create_call", mode="status", status=503, count=1)
    ops = running.make_key("ops", scopes=("campaigns", "watch"), rate_per_minute=100_000)
    cid = _campaign(running, ops, [ANSWERS])
    calls = _until(
        lambda: _calls(running, ops),
        lambda calls: bool(calls) and calls[0]["status"] not in ("placing",),
    )
    call = calls[0]
    assert call["source"] == "campaign"
    assert call["attemptId"] >= 1
    assert call["status"] in ("unknown", "not_placed")
    if call["status"] == "not_placed":
        assert running.emulator.calls_created() == []
    running.http.post(f"/v1/campaigns/{cid}/stop", headers=running.headers(ops))
    if call["status"] != "unknown":
        return
    # A person's verdict on the attempt (in the campaign's journal) reaches its call.
    _until(lambda: _state(running, ops, cid), lambda s: s in ("stopped", "finished"))
    said = running.http.post(
        f"/v1/campaigns/{cid}/attempts/{call['attemptId']}/verdict",
        json={"verdict": "not_placed", "note": "no such conversation"},
        headers=running.headers(ops),
    )
    assert said.status_code == 200, said.text
    after = running.http.get(f"/v1/calls/{call['id']}", headers=running.headers(ops)).json()
    assert after["status"] == "not_placed"
    assert "no such conversation" in after["detail"]


def test_call_change_table() -> None:
    def step(name: str, **more: Any) -> AttemptUpdate:
        return AttemptUpdate(attempt=1, step=name, line=2, phone=ANSWERS, **more)

    assert call_change(step("dialing", agent_id="u1")) == {"status": "placing", "agent_id": "u1"}
    assert call_change(step("placed", conversation_id="c1")) == {
        "status": "placed",
        "conversation_id": "c1",
    }
    assert call_change(step("outcome", outcome="busy", detail="d")) == {
        "status": "placed",
        "outcome": "busy",
        "detail": "d",
    }
    assert call_change(step("unknown", detail="why")) == {"status": "unknown", "detail": "why"}
    assert call_change(step("refused", detail="no"))["status"] == "refused"
    assert call_change(step("progress", progress={"event": "agent_alerting"})) == {}


def test_presence_changes_are_agent_events_for_keys_that_may_see_the_agent(
    running: Running,
) -> None:
    admin = running.headers(running.admin_key)
    bob_only = running.make_key("bobs", scopes=("watch",), agents=("bob@example.com",))
    agents = running.http.get("/v1/agents", params={"agent": "alice@example.com"}, headers=admin)
    assert agents.status_code == 200, agents.text
    alice = agents.json()["agents"][0]["id"]
    running.set_presence(alice, "Away")

    def agent_events(key: str) -> list[dict[str, Any]]:
        headers = running.headers(key, **{"Last-Event-ID": "0"})
        quiet = httpx.Timeout(10, read=0.5)
        with running.http.stream("GET", "/v1/events", headers=headers, timeout=quiet) as stream:
            found = _events_until_quiet(stream)
        return [json.loads(e["data"]) for e in found if e["event"] == "agent.updated"]

    seen = _until(lambda: agent_events(running.admin_key), bool, timeout_s=10)
    assert {"id": alice, "agent": "alice@example.com", "presence": "AWAY"} in [
        e["agent"] for e in seen
    ]
    # Alice is not one of that key's agents (a resync, naming nobody, may be there).
    assert [e for e in agent_events(bob_only) if e["agent"] is not None] == []
