"""Review over /v1: a verdict on a call of unknown outcome, a campaign's unknowns and pinned
contacts, verdicts on campaign attempts and reassignment; races between two supervisors.

Unknowns come from the emulator's faults: the create-call answers 503 (nothing was created) and
the conversation-details query fails, so nothing can prove either way and a person must decide.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from gcdial.serve.config import ServeConfig

from .conftest import Running

ALICE = "alice@example.com"
GONE = "gone@example.com"


@pytest.fixture
def serve_config() -> ServeConfig:
    """Short resolution windows: an unknown is left for review within a second or two."""
    return ServeConfig(
        sse_poll_s=0.2, resolve_timeout_s=1.5, resolve_later_s=0, campaign_resolve_timeout_s=1.0
    )


def _blind_genesys(running: Running, creates: int) -> None:
    """The next ``creates`` create-calls answer 503 and analytics is down: outcome unknown."""
    running.emulator.add_fault(route="create_call", mode="status", status=503, count=creates)
    running.emulator.add_fault(route="analytics", mode="status", status=503)


def _unknown_call(running: Running, to: str) -> dict[str, Any]:
    _blind_genesys(running, 1)
    answer = running.dial({"agent": ALICE, "to": to}, f"crm-{to}")
    assert answer.status_code == 202, answer.text
    call: dict[str, Any] = answer.json()
    assert call["status"] == "unknown", call
    running.emulator.clear_faults()
    return call


def test_call_verdict_once_idempotent_audited_and_published(running: Running) -> None:
    call = _unknown_call(running, "+14155550120")
    url = f"/v1/calls/{call['id']}/verdict"
    body = {"verdict": "not_placed", "note": "not in the interaction view"}
    watcher = running.make_key("wall", scopes=("watch",))
    assert running.http.post(url, json=body, headers=running.headers(watcher)).status_code == 403
    missing = running.http.post("/v1/calls/call_nope/verdict", json=body, headers=running.headers())
    assert missing.status_code == 404
    bad = running.http.post(url, json={"verdict": "maybe"}, headers=running.headers())
    assert bad.status_code == 422
    assert bad.json()["error"]["path"] == "$.verdict"

    first = running.http.post(url, json=body, headers=running.headers(**{"Idempotency-Key": "v1"}))
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "not_placed"
    replay = running.http.post(url, json=body, headers=running.headers(**{"Idempotency-Key": "v1"}))
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    reused = running.http.post(
        url, json={"verdict": "placed"}, headers=running.headers(**{"Idempotency-Key": "v1"})
    )
    assert reused.status_code == 422
    assert reused.json()["error"]["type"] == "idempotency_key_reused"
    late = running.http.post(url, json={"verdict": "placed"}, headers=running.headers())
    assert late.status_code == 409
    error = late.json()["error"]
    assert error["type"] == "already_resolved"
    assert "not placed by crm at " in error["message"]
    assert "UTC" in error["message"]

    # One verdict recorded (the replay, the refused and the late ones are not verdicts).
    metrics = running.http.get("/metrics").text
    assert 'gcdial_serve_review_verdicts_total{subject="call",verdict="not_placed"} 1.0' in metrics
    shown = running.http.get(f"/v1/calls/{call['id']}", headers=running.headers()).json()
    assert shown["status"] == "not_placed"
    assert "verdict by crm: not_placed (not in the interaction view)" in shown["detail"]
    events = [e for e in running.store.events_after(0, call_id=call["id"])]
    verdicts = [e for e in events if e.type == "call.verdict"]
    assert len(verdicts) == 1
    assert '"by": "crm"' in verdicts[0].data
    audit = [a for a in running.store.list_audit() if a.action == "verdict"]
    assert [(a.result, a.detail) for a in audit] == [("not_placed", "not in the interaction view")]
    assert running.emulator.calls_created() == []  # nothing was re-sent


def _campaign(running: Running, key: str, rows: str) -> str:
    created = running.http.post(
        "/v1/campaigns",
        files={"file": ("contacts.csv", rows.encode(), "text/csv")},
        data={"agents": ALICE, "window": "00:00-23:59"},
        headers=running.headers(key),
    )
    assert created.status_code == 201, created.text
    campaign_id: str = created.json()["id"]
    return campaign_id


def _settled(running: Running, key: str, campaign_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        body: dict[str, Any] = running.http.get(
            f"/v1/campaigns/{campaign_id}", headers=running.headers(key)
        ).json()
        if body["state"] in ("paused", "finished", "failed", "stopped"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_campaign_unknowns_and_pinned_contacts_reviewed_over_http(running: Running) -> None:
    key = running.make_key("ops", scopes=("campaigns",), rate_per_minute=100_000)
    other = running.make_key("ops2", scopes=("campaigns", "admin"), rate_per_minute=100_000)
    rows = f"phone,agent\n+14155550121,\n+14155550122,\n+14155550123,{GONE}\n"
    cid = _campaign(running, key, rows)
    review_url = f"/v1/campaigns/{cid}/review"
    early = running.http.post(
        f"/v1/campaigns/{cid}/reassign",
        json={"from": GONE, "to": "any"},
        headers=running.headers(key),
    )
    assert early.status_code == 409
    assert early.json()["error"]["type"] == "campaign_not_started"
    _blind_genesys(running, 2)
    assert running.http.post(f"/v1/campaigns/{cid}/start", headers=running.headers(key)).is_success
    done = _settled(running, key, cid)
    running.emulator.clear_faults()
    assert done["counts"]["needsReview"] == 2, done

    review = running.http.get(review_url, headers=running.headers(key))
    assert review.status_code == 200, review.text
    body = review.json()
    assert body["reviewable"] is True
    assert [u["contact"]["line"] for u in body["unknown"]] == [2, 3]
    first = body["unknown"][0]
    assert first["attempts"][0]["state"] == "unknown"
    assert any(e["kind"] == "attempt.unknown" for e in first["events"])
    assert first["verdict"] == f"/v1/campaigns/{cid}/attempts/{first['attemptId']}/verdict"
    assert body["pinned"] == [{"agent": GONE, "contacts": 1, "gone": True}]
    assert running.http.get(review_url, headers=running.headers()).status_code == 403

    # Two supervisors at the same moment on the same attempt: exactly one verdict applies.
    def verdict(args: tuple[str, str]) -> httpx.Response:
        who, said = args
        with httpx.Client(base_url=running.base_url, timeout=30) as http:
            return http.post(first["verdict"], json={"verdict": said}, headers=running.headers(who))

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(verdict, [(key, "not_placed"), (other, "placed")]))
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    won = next(a for a in answers if a.status_code == 200).json()
    lost = next(a for a in answers if a.status_code == 409).json()["error"]
    assert lost["type"] == "already_resolved"
    assert f"by {won['by']}" in lost["message"]
    assert "UTC" in lost["message"]
    second = body["unknown"][1]
    placed = running.http.post(
        second["verdict"], json={"verdict": "placed", "note": "seen"}, headers=running.headers(key)
    )
    assert placed.status_code == 200, placed.text
    assert placed.json()["contact"]["outcome"] == "placed"
    nobody = running.http.post(
        f"/v1/campaigns/{cid}/attempts/999/verdict",
        json={"verdict": "placed"},
        headers=running.headers(key),
    )
    assert nobody.status_code == 404

    moved = running.http.post(
        f"/v1/campaigns/{cid}/reassign",
        json={"from": GONE, "to": "any"},
        headers=running.headers(key),
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["moved"] == 1
    again = running.http.post(
        f"/v1/campaigns/{cid}/reassign",
        json={"from": GONE, "to": "any"},
        headers=running.headers(key),
    )
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "nothing_to_reassign"
    after = running.http.get(review_url, headers=running.headers(key)).json()
    assert after["pinned"] == []
    assert after["unknown"] == []

    types = [e.type for e in running.store.events_after(0)]
    assert types.count("campaign.verdict") == 2
    assert types.count("campaign.reassigned") == 1
    actions = [a.action for a in running.store.list_audit()]
    assert actions.count("campaign.verdict") == 2
    assert actions.count("campaign.reassign") == 1

    # Resumed: the contact found not placed (if that verdict won) and the reassigned one are
    # dialed; the one found placed never again.
    resumed = running.http.post(f"/v1/campaigns/{cid}/resume", headers=running.headers(key))
    assert resumed.status_code == 200, resumed.text
    while_running = running.http.post(
        first["verdict"], json={"verdict": "placed"}, headers=running.headers(key)
    )
    assert while_running.status_code == 409
    assert while_running.json()["error"]["type"] in ("campaign_running", "already_resolved")
    assert _settled(running, key, cid)["state"] == "finished"
    numbers = sorted(c.get("phoneNumber") or "" for c in running.emulator.calls_created())
    expected = ["+14155550123"] + (["+14155550121"] if won["verdict"] == "not_placed" else [])
    assert [n[-12:] for n in numbers] == sorted(expected)
