"""Queues, wrap-up codes and after-call work, over real HTTP and WebSocket."""

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from gcdial.emulator import EmulatorServer
from gcdial.emulator.fixtures import FixtureError, parse_fixture

from .helpers import ALICE, api, assert_error, call_over, wait_for

SALES = "9ee00001-0000-4000-8000-000000000001"
SUPPORT = "9ee00002-0000-4000-8000-000000000002"
SALE = "c0de0001-0000-4000-8000-000000000001"
CALLBACK = "c0de0002-0000-4000-8000-000000000002"
DNC = "c0de0004-0000-4000-8000-000000000004"


def _queue_call(http: httpx.Client, number: str, queue: str | None = SALES) -> str:
    body: dict[str, Any] = {"phoneNumber": number}
    if queue is not None:
        body["callFromQueueId"] = queue
    response = http.post(f"/api/v2/conversations/calls/user/{ALICE}", json=body)
    assert response.status_code == 200, response.text
    call_id: str = response.json()["id"]
    return call_id


def _agent(body: dict[str, Any]) -> dict[str, Any]:
    [agent] = [p for p in body["participants"] if p["purpose"] == "agent"]
    result: dict[str, Any] = agent
    return result


def _wrapped(http: httpx.Client, call_id: str) -> dict[str, Any] | None:
    body = http.get(f"/api/v2/conversations/calls/{call_id}").json()
    agent = _agent(body)
    return agent if "wrapup" in agent or agent.get("wrapupSkipped") else None


def test_queues_list_with_their_codes(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        queues = http.get("/api/v2/routing/queues").json()
        assert [q["name"] for q in queues["entities"]] == ["Sales", "Support"]
        assert queues["total"] == 2
        assert queues["pageCount"] == 1
        page = http.get("/api/v2/routing/queues", params={"pageSize": 1, "pageNumber": 2}).json()
        assert [q["id"] for q in page["entities"]] == [SUPPORT]
        assert page["previousUri"].endswith("pageSize=1&pageNumber=1")
        assert "nextUri" not in page
        found = http.get("/api/v2/routing/queues", params={"name": "sup*"}).json()
        assert [q["id"] for q in found["entities"]] == [SUPPORT]
        codes = http.get(f"/api/v2/routing/queues/{SUPPORT}/wrapupcodes").json()
        assert [c["name"] for c in codes["entities"]] == [
            "Callback requested",
            "Wrong number",
            "No answer",
        ]
        every = http.get("/api/v2/routing/wrapupcodes", params={"pageSize": 2}).json()
        assert every["total"] == 6
        assert every["pageCount"] == 3
        assert len(every["entities"]) == 2
        one = http.get(f"/api/v2/routing/wrapupcodes/{SALE}").json()
        assert one["name"] == "Sale"
        assert http.get(f"/api/v2/routing/queues/{SALES}").json()["name"] == "Sales"
        assert_error(http.get("/api/v2/routing/queues/nope"), 404, "not.found")
        assert_error(
            http.get("/api/v2/routing/wrapupcodes", params={"pageSize": 0}), 400, "bad.request"
        )


def test_queue_call_gets_the_rule_wrapup_after_the_after_call_time(
    emulator: EmulatorServer,
) -> None:
    with api(emulator) as http:
        call_id = _queue_call(http, "+14155550100")
        ended = wait_for(lambda: call_over(http, call_id))
        agent = _agent(ended)
        assert agent["queue"] == {"id": SALES}
        assert agent["wrapupRequired"] is True
        assert agent["wrapupPrompt"] == "mandatory"
        assert agent["wrapupTimeoutMs"] == 60000
        assert agent["startAcwTime"] == agent["endTime"]
        agent = wait_for(lambda: _wrapped(http, call_id))
    wrapup = agent["wrapup"]
    assert wrapup["code"] == SALE
    assert wrapup["name"] == "Sale"
    assert wrapup["notes"] == "Order placed"
    assert wrapup["durationSeconds"] == 10
    assert wrapup["provisional"] is False
    assert wrapup["endTime"] == agent["endAcwTime"]
    ledger = emulator.wrapups()
    assert ledger["byCode"] == {"Sale": 1}
    assert ledger["wrapups"][0]["conversationId"] == call_id
    assert ledger["wrapups"][0]["source"] == "agent"


def test_callback_notes_carry_a_time(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        call_id = _queue_call(http, "+14155550200")
        wrapup = wait_for(lambda: _wrapped(http, call_id))["wrapup"]
    assert wrapup["code"] == CALLBACK
    when = wrapup["notes"].removeprefix("Call back at ")
    later = datetime.fromisoformat(when) - datetime.fromisoformat(wrapup["endTime"])
    assert later == timedelta(hours=2)


def test_never_arriving_wrapup_can_be_given_by_patch(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        call_id = _queue_call(http, "+14155550500")
        ended = wait_for(lambda: call_over(http, call_id))
        agent = _agent(ended)
        path = f"/api/v2/conversations/calls/{call_id}/participants/{agent['id']}"
        emulator.set_speed(5000)
        assert _wrapped(http, call_id) is None
        assert emulator.wrapups()["pending"] == 1
        assert_error(
            http.patch(path, json={"wrapup": {}}), 400, "conversation.error.wrapup.code.required"
        )
        assert_error(
            http.patch(path, json={"wrapupSkipped": True}),
            400,
            "conversation.error.wrapup.cannot.skip",
        )
        assert_error(http.patch(path, json={"wrapup": {"code": "nope"}}), 400, "bad.request")
        assert_error(http.patch(path, json={"wrapup": {"code": DNC, "x": 1}}), 400, "bad.request")
        provisional = {"wrapup": {"code": DNC, "provisional": True}}
        assert_error(http.patch(path, json=provisional), 400, "bad.request")
        given = {"code": DNC, "notes": "asked twice", "tags": ["vip"]}
        assert http.patch(path, json={"wrapup": given}).status_code == 202
        agent = _agent(http.get(f"/api/v2/conversations/calls/{call_id}").json())
        assert_error(http.patch(path, json={"wrapup": given}), 400, "bad.request")
    assert agent["wrapup"]["name"] == "Do not call"
    assert agent["wrapup"]["notes"] == "asked twice"
    assert agent["wrapup"]["tags"] == ["vip"]
    ledger = emulator.wrapups()
    assert ledger["byCode"] == {"Do not call": 1}
    assert ledger["pending"] == 0
    assert ledger["wrapups"][0]["source"] == "api"


def test_skip_where_the_prompt_allows_it(make_emulator: Any) -> None:
    emu = make_emulator(wrapup_prompt="optional")
    with api(emu) as http:
        call_id = _queue_call(http, "+14155550500")
        agent = _agent(wait_for(lambda: call_over(http, call_id)))
        path = f"/api/v2/conversations/calls/{call_id}/participants/{agent['id']}"
        assert http.patch(path, json={"wrapupSkipped": True}).status_code == 202
        agent = _agent(http.get(f"/api/v2/conversations/calls/{call_id}").json())
    assert agent["wrapupSkipped"] is True
    assert "wrapup" not in agent
    assert emu.wrapups()["byCode"] == {"(skipped)": 1}


def test_non_acd_calls_carry_no_wrapup_unless_configured(
    emulator: EmulatorServer, make_emulator: Any
) -> None:
    with api(emulator) as http:
        call_id = _queue_call(http, "+14155550100", queue=None)
        agent = _agent(wait_for(lambda: call_over(http, call_id)))
        emulator.set_speed(5000)
        assert not {"wrapupRequired", "startAcwTime", "wrapup", "queue"} & agent.keys()
        path = f"/api/v2/conversations/calls/{call_id}/participants/{agent['id']}"
        assert_error(http.patch(path, json={"wrapup": {"code": SALE}}), 400, "bad.request")
    emu = make_emulator(non_acd_wrapup=True)
    with api(emu) as http:
        call_id = _queue_call(http, "+14155550100", queue=None)
        agent = wait_for(lambda: _wrapped(http, call_id))
    assert agent["wrapupRequired"] is False
    assert agent["wrapup"]["name"] == "Sale"


def test_agent_who_never_answered_has_no_after_call_work(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        call_id = _queue_call(http, "+14155550199")
        agent = _agent(wait_for(lambda: call_over(http, call_id)))
    assert "startAcwTime" not in agent
    assert emulator.wrapups()["pending"] == 0


def test_unknown_queue_is_refused(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        response = http.post(
            f"/api/v2/conversations/calls/user/{ALICE}",
            json={"phoneNumber": "+14155550100", "callFromQueueId": "nope"},
        )
    body = assert_error(response, 400, "bad.request")
    assert body["details"][0]["fieldName"] == "callFromQueueId"
    assert emulator.calls_created() == []


def test_wrapup_reaches_frames_and_details(emulator: EmulatorServer) -> None:
    emulator.set_analytics(ingestion_delay=0)
    with api(emulator) as http:
        channel = http.post("/api/v2/notifications/channels").json()
        topic = f"v2.users.{ALICE}.conversations.calls"
        subs = f"/api/v2/notifications/channels/{channel['id']}/subscriptions"
        http.put(subs, json=[{"id": topic}])
        with connect(channel["connectUri"]) as ws:
            call_id = _queue_call(http, "+14155550400")
            while True:
                frame = json.loads(ws.recv(timeout=10))
                if frame["topicName"] == topic and "wrapup" in _agent(frame["eventBody"]):
                    break
        assert _agent(frame["eventBody"])["wrapup"]["code"] == DNC
        start = datetime.fromisoformat(_agent(frame["eventBody"])["startTime"])
        interval = (
            f"{(start - timedelta(hours=1)).isoformat()}/{(start + timedelta(hours=1)).isoformat()}"
        )
        query = {
            "interval": interval,
            "segmentFilters": [
                {"type": "and", "predicates": [{"dimension": "wrapUpCode", "value": DNC}]}
            ],
        }
        found = http.post("/api/v2/analytics/conversations/details/query", json=query).json()
    [conversation] = found["conversations"]
    assert conversation["conversationId"] == call_id
    [agent] = [p for p in conversation["participants"] if p["purpose"] == "agent"]
    segment = agent["sessions"][0]["segments"][-1]
    assert segment["segmentType"] == "wrapup"
    assert segment["wrapUpCode"] == DNC
    assert segment["wrapUpNote"] == "Asked not to be called again"
    assert segment["queueId"] == SALES


def test_fixture_wrapup_references_are_checked() -> None:
    base: dict[str, Any] = {
        "clients": [{"id": "c", "secret": "s", "grant": "client_credentials"}],
        "wrapup_codes": [{"id": "c0de0001-0000-4000-8000-000000000001", "name": "Sale"}],
    }
    with pytest.raises(FixtureError, match=r"queues\[0\]\.wrapup_codes\[0\]: no wrap-up code"):
        parse_fixture(
            {**base, "queues": [{"id": SALES, "name": "Q", "wrapup_codes": ["Nope"]}]}, source="f"
        )
    with pytest.raises(FixtureError, match=r"wrapups\[0\].code"):
        parse_fixture({**base, "wrapups": [{"match": "*", "code": "Nope"}]}, source="f")
    with pytest.raises(FixtureError, match="either 'code' or 'never'"):
        parse_fixture({**base, "wrapups": [{"match": "*"}]}, source="f")


def test_the_documented_wrapup_fixture_is_valid() -> None:
    text = (Path(__file__).parents[2] / "docs" / "emulator.md").read_text()
    blocks = [b for b in text.split("```json\n")[1:] if '"wrapups"' in b.split("```")[0]]
    fixture = parse_fixture(json.loads(blocks[0].split("```")[0]), source="docs/emulator.md")
    assert [rule.match for rule in fixture.wrapups] == ["+14155550142", "+1415555015?", "*"]


def test_unanswered_queue_call_is_wrapped_up_no_answer(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        call_id = _queue_call(http, "+14155550255")
        emulator.set_speed(2000)
        agent = wait_for(lambda: _wrapped(http, call_id))
    assert agent["wrapup"]["name"] == "No answer"


@pytest.mark.parametrize(
    ("prompt", "number", "after_s"),
    [("timeout", "+14155550500", 10.0), ("forcedTimeout", "+14155550100", 30.0)],
)
def test_timed_prompts_end_with_the_system_timeout_code(
    make_emulator: Any, prompt: str, number: str, after_s: float
) -> None:
    emu = make_emulator(wrapup_prompt=prompt, wrapup_timeout_s=5, wrapup_after_s=after_s)
    with api(emu) as http:
        call_id = _queue_call(http, number)
        agent = wait_for(lambda: _wrapped(http, call_id))
    assert agent["wrapupTimeoutMs"] == 5000
    assert agent["wrapup"]["code"] == "ININ-WRAP-UP-TIMEOUT"
    assert agent["wrapup"]["durationSeconds"] == 5
    [entry] = emu.wrapups()["wrapups"]
    assert entry["source"] == "timeout"


def test_a_skip_shows_in_details(make_emulator: Any) -> None:
    emu = make_emulator(wrapup_prompt="agentRequested", analytics_ingestion_delay_s=0)
    with api(emu) as http:
        call_id = _queue_call(http, "+14155550500")
        agent = _agent(wait_for(lambda: call_over(http, call_id)))
        path = f"/api/v2/conversations/calls/{call_id}/participants/{agent['id']}"
        assert http.patch(path, json={"wrapupSkipped": True}).status_code == 202
        start = datetime.fromisoformat(agent["startTime"])
        window = (
            f"{(start - timedelta(hours=1)).isoformat()}/{(start + timedelta(hours=1)).isoformat()}"
        )
        found = http.post(
            "/api/v2/analytics/conversations/details/query", json={"interval": window}
        ).json()
    [conversation] = found["conversations"]
    [session] = next(p for p in conversation["participants"] if p["purpose"] == "agent")["sessions"]
    assert session["acwSkipped"] is True
    assert session["segments"][-1]["wrapUpCode"] == "ININ-WRAP-UP-SKIPPED"
