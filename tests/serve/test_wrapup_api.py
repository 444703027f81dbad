"""The service follows a queue call through after-call work: ``call.ended``, then ``call.wrapup``
(the call's event stream ends there), and the call resource carries ``wrapup``. A call without a
queue ends its stream at ``call.ended``, as before."""

from __future__ import annotations

import json
import time
from typing import Any

from .conftest import Running
from .test_events_webhooks import sse_events

ALICE = "alice@example.com"
SALES = "9ee00001-0000-4000-8000-000000000001"


def test_a_queue_calls_wrapup_is_published_and_kept_with_the_call(running: Running) -> None:
    call = running.dial({"agent": ALICE, "to": "+14155550410", "queueId": SALES}, "wrap-1").json()
    url = f"/v1/calls/{call['id']}/events"
    with running.http.stream("GET", url, headers=running.headers()) as response:
        events = sse_events(response, 100)
    types = [e["event"] for e in events]
    assert types[-2:] == ["call.ended", "call.wrapup"]
    ended = json.loads(events[-2]["data"])
    assert ended["wrapupExpected"] is True
    assert ended["call"]["wrapup"] is None
    wrapped = json.loads(events[-1]["data"])
    assert wrapped["missing"] is False
    assert wrapped["wrapup"]["name"] == "Do not call"
    assert wrapped["wrapup"]["code"] == "c0de0004-0000-4000-8000-000000000004"
    assert wrapped["wrapup"]["notes"] == "Asked not to be called again"
    assert wrapped["wrapup"]["at"]
    assert wrapped["call"]["wrapup"] == wrapped["wrapup"]

    resource = running.http.get(f"/v1/calls/{call['id']}", headers=running.headers()).json()
    assert resource["wrapup"] == wrapped["wrapup"]
    assert set(resource["wrapup"]) == {"code", "name", "notes", "at"}


def test_a_call_without_a_queue_ends_its_stream_at_call_ended(running: Running) -> None:
    call = running.dial({"agent": ALICE, "to": "+14155550410"}, "wrap-2").json()
    url = f"/v1/calls/{call['id']}/events"
    with running.http.stream("GET", url, headers=running.headers()) as response:
        events = sse_events(response, 100)
    assert events[-1]["event"] == "call.ended"
    assert json.loads(events[-1]["data"])["wrapupExpected"] is False
    resource = running.http.get(f"/v1/calls/{call['id']}", headers=running.headers()).json()
    assert resource["wrapup"] is None


def _preview(running: Running, key: str, **form: str) -> Any:
    return running.http.post(
        "/v1/campaigns/preview",
        files={"file": ("contacts.csv", b"phone\n+14155550105\n", "text/csv")},
        data={"agents": ALICE, "window": "00:00-23:59", **form},
        headers=running.headers(key),
    )


def test_the_campaign_preview_over_http_speaks_of_the_queue_and_the_unmapped_codes(
    running: Running,
) -> None:
    key = running.make_key("ops", scopes=("campaigns",), rate_per_minute=100_000)
    bare = _preview(running, key)
    assert bare.status_code == 200, bare.text
    assert bare.json()["wrapup"][0].startswith("no queue set: calls are not ACD calls")

    rules = {"default": "done", "codes": {"Sale": "done", "Do not call": "dnc"}}
    ruled = _preview(running, key, queueId=SALES, wrapupRules=json.dumps(rules))
    assert ruled.status_code == 200, ruled.text
    lines = ruled.json()["wrapup"]
    assert lines[0] == f"calls placed for queue {SALES}; their wrap-up codes are recorded"
    assert "wrap-up 'do not call': dnc" in lines
    assert lines[-1].startswith("unmapped wrap-up codes of the org (get the default): ")
    assert "Callback requested" in lines[-1]

    bad = _preview(running, key, queueId=SALES, wrapupRules='{"codes": {"Sale": "sell"}}')
    assert bad.status_code == 422
    problem = bad.json()
    assert "'sell' is not an action" in json.dumps(problem)
    assert "form:wrapupRules" in json.dumps(problem)


def test_a_campaign_over_http_keeps_wrapups_and_reviews_the_missing_ones(
    running: Running,
) -> None:
    key = running.make_key("ops", scopes=("campaigns", "watch"), rate_per_minute=100_000)
    created = running.http.post(
        "/v1/campaigns",
        files={"file": ("c.csv", b"phone\n+14155550105\n+14155550510\n", "text/csv")},
        data={
            "agents": ALICE,
            "window": "00:00-23:59",
            "queueId": SALES,
            "wrapupRules": json.dumps({"codes": {"Sale": "done"}}),
            "wrapupTimeout": "1s",
        },
        headers=running.headers(key),
    )
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    started = running.http.post(f"/v1/campaigns/{cid}/start", headers=running.headers(key))
    assert started.is_success, started.text
    deadline = time.monotonic() + 40
    while True:
        state = running.http.get(f"/v1/campaigns/{cid}", headers=running.headers(key)).json()
        if state["state"] in ("finished", "failed", "stopped") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert state["state"] == "finished", state
    review = running.http.get(f"/v1/campaigns/{cid}/review", headers=running.headers(key))
    assert review.status_code == 200, review.text
    missing = review.json()["wrapupsMissing"]
    assert [m["contact"]["phone"] for m in missing] == ["+14155550510"]
    assert missing[0]["attempt"]["conversationId"]
    calls = running.http.get(
        "/v1/calls", params={"campaign": cid}, headers=running.headers(key)
    ).json()["calls"]
    wrapped = {c["to"]: c["wrapup"] for c in calls}
    assert wrapped["+14155550105"]["name"] == "Sale"
    assert wrapped["+14155550510"] is None
