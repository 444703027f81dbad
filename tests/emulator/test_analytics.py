"""The conversation-details query over real HTTP: ingestion delay, filters, paging, permission."""

import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from gcdial.emulator import EmulatorServer

from .helpers import ALICE, BOB, api, assert_error, wait_for

QUERY = "/api/v2/analytics/conversations/details/query"
ATTEMPT = {"gcdialAttemptId": "attempt-1", "crm": "42"}
NO_ANALYTICS = ("sandbox-no-analytics", "sandbox-no-analytics-secret")


def _interval(base_url: str, hours: int = 1) -> str:
    """An interval around the emulator's simulated now (it runs ahead of the wall clock)."""
    now = datetime.fromisoformat(httpx.get(base_url + "/_emulator/clock").json()["time"])
    start, end = now - timedelta(hours=hours), now + timedelta(hours=hours)
    return f"{start.isoformat()}/{end.isoformat()}"


def _query(http: httpx.Client, **body: Any) -> dict[str, Any]:
    body.setdefault("interval", _interval(str(http.base_url)))
    response = http.post(QUERY, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _by_user(user: str) -> list[dict[str, Any]]:
    predicate = {"type": "dimension", "dimension": "userId", "operator": "matches", "value": user}
    return [{"type": "and", "predicates": [predicate]}]


def _create(http: httpx.Client, number: str, *, user: str = ALICE, **extra: Any) -> str:
    response = http.post(
        f"/api/v2/conversations/calls/user/{user}", json={"phoneNumber": number, **extra}
    )
    assert response.status_code == 200, response.text
    call_id: str = response.json()["id"]
    return call_id


def _token(emu: EmulatorServer, client: tuple[str, str]) -> str:
    response = httpx.post(
        emu.base_url + "/oauth/token", data={"grant_type": "client_credentials"}, auth=client
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def test_a_call_appears_only_after_the_ingestion_delay(emulator: EmulatorServer) -> None:
    emulator.set_analytics(ingestion_delay=60)
    with api(emulator) as http:
        call_id = _create(http, "+14155550101", attributes=ATTEMPT, callerId="+13175550000")
        early = _query(http, segmentFilters=_by_user(ALICE))
        assert early == {"totalHits": 0}
        emulator.set_speed(2000)
        found = wait_for(lambda: _query(http, segmentFilters=_by_user(ALICE)).get("conversations"))
    [conversation] = found
    assert conversation["conversationId"] == call_id
    assert conversation["originatingDirection"] == "outbound"
    assert conversation["conversationStart"].endswith("Z")
    agent = next(p for p in conversation["participants"] if p["purpose"] == "agent")
    customer = next(p for p in conversation["participants"] if p["purpose"] == "external")
    assert agent["userId"] == ALICE
    assert "attributes" not in agent
    assert customer["attributes"] == ATTEMPT
    for participant in (agent, customer):
        [session] = participant["sessions"]
        assert session["mediaType"] == "voice"
        assert session["direction"] == "outbound"
        assert session["dnis"] == "tel:+14155550101"
        assert session["ani"] == "tel:+13175550000"
        assert session["segments"][0]["segmentStart"]


def test_a_finished_call_has_an_end_and_disconnect_types(emulator: EmulatorServer) -> None:
    emulator.set_analytics(ingestion_delay=0)
    emulator.set_speed(2000)
    with api(emulator) as http:
        _create(http, "+14155550185")  # carrier failure: ends quickly with transport.failure
        ended = wait_for(
            lambda: [c for c in _query(http).get("conversations", []) if "conversationEnd" in c]
        )
    segments = [s for p in ended[0]["participants"] for x in p["sessions"] for s in x["segments"]]
    assert {s["segmentType"] for s in segments} <= {"alert", "dialing", "interact"}
    kinds = {s.get("disconnectType") for s in segments} - {None}
    assert "transportFailure" in kinds
    assert "errorCode" in segments[-1] or any("errorCode" in s for s in segments)


def test_filters_on_agent_number_and_conversation(emulator: EmulatorServer) -> None:
    emulator.set_analytics(ingestion_delay=0)
    with api(emulator) as http:
        alice_call = _create(http, "+14155550102", attributes=ATTEMPT)
        bob_call = _create(http, "+14155550103", user=BOB)

        def ids(**body: Any) -> list[str]:
            return [c["conversationId"] for c in _query(http, **body).get("conversations", [])]

        assert sorted(ids()) == sorted([alice_call, bob_call])
        assert ids(segmentFilters=_by_user(BOB)) == [bob_call]
        dnis = {"dimension": "dnis", "value": "tel:+14155550102"}
        assert ids(segmentFilters=[{"type": "and", "predicates": [dnis]}]) == [alice_call]
        voice_out = [
            {"dimension": "mediaType", "value": "voice"},
            {"dimension": "direction", "value": "outbound"},
        ]
        both = ids(segmentFilters=[{"type": "and", "predicates": voice_out}])
        assert sorted(both) == sorted([alice_call, bob_call])
        either = {
            "type": "or",
            "clauses": [
                {"type": "and", "predicates": [{"dimension": "userId", "value": ALICE}]},
                {"type": "and", "predicates": [{"dimension": "dnis", "value": "tel:+1999"}]},
            ],
        }
        assert ids(segmentFilters=[either]) == [alice_call]
        by_id = [{"type": "or", "predicates": [{"dimension": "conversationId", "value": bob_call}]}]
        assert ids(conversationFilters=by_id) == [bob_call]
        no_ani = [{"type": "and", "predicates": [{"dimension": "ani", "operator": "exists"}]}]
        assert ids(segmentFilters=no_ani) == []
        wrong = [{"type": "and", "predicates": [{"dimension": "dnis", "value": "+14155550102"}]}]
        assert ids(segmentFilters=wrong) == []


def test_outside_the_interval_nothing_is_found(emulator: EmulatorServer) -> None:
    emulator.set_analytics(ingestion_delay=0)
    with api(emulator) as http:
        _create(http, "+14155550104")
        past = "2020-01-01T00:00:00.000Z/2020-01-02T00:00:00.000Z"
        response = http.post(QUERY, json={"interval": past})
    assert response.json() == {"totalHits": 0}


def test_paging_order_and_filler_conversations(emulator: EmulatorServer) -> None:
    emulator.set_analytics(ingestion_delay=0, filler_conversations=250)
    interval = _interval(emulator.base_url)
    with api(emulator) as http:
        pages = [
            _query(
                http,
                interval=interval,
                paging={"pageSize": 100, "pageNumber": n},
                segmentFilters=_by_user(ALICE),
            )
            for n in (1, 2, 3, 4)
        ]
        newest = _query(http, interval=interval, order="desc", paging={"pageSize": 1})
        default = _query(http, interval=interval)
        assert_error(
            http.post(QUERY, json={"interval": interval, "paging": {"pageSize": 101}}),
            400,
            "bad.request",
        )
    assert [p["totalHits"] for p in pages] == [250] * 4
    assert [len(p.get("conversations", [])) for p in pages] == [100, 100, 50, 0]
    assert "conversations" not in pages[3]
    ids = [c["conversationId"] for p in pages for c in p.get("conversations", [])]
    assert len(set(ids)) == 250
    starts = [c["conversationStart"] for p in pages for c in p.get("conversations", [])]
    assert starts == sorted(starts)
    assert newest["conversations"][0]["conversationStart"] == starts[-1]
    assert len(default["conversations"]) == 25
    agents = {
        p["userId"] for c in pages[0]["conversations"] for p in c["participants"] if "userId" in p
    }
    assert agents == {ALICE}


def test_attributes_can_be_left_out_like_the_sdk_model_says(emulator: EmulatorServer) -> None:
    emulator.set_analytics(ingestion_delay=0, include_attributes=False)
    emulator.set_speed(2000)
    with api(emulator) as http:
        _create(http, "+14155550105", attributes=ATTEMPT)
        conversation = wait_for(
            lambda: [
                c for c in _query(http).get("conversations", []) if len(c["participants"]) == 2
            ]
        )[0]
    assert all("attributes" not in p for p in conversation["participants"])


def test_a_client_without_the_analytics_permission_gets_403(emulator: EmulatorServer) -> None:
    with api(emulator, _token(emulator, NO_ANALYTICS)) as http:
        body = assert_error(
            http.post(QUERY, json={"interval": _interval(emulator.base_url)}),
            403,
            "missing.any.permissions",
        )
        assert "analytics:conversationDetail:view" in body["message"]
        assert http.get(f"/api/v2/users/{ALICE}").status_code == 200
        assert _create(http, "+14155550106")
    with api(emulator) as http:
        assert _query(http)["totalHits"] >= 0


def test_faults_on_the_analytics_route(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="analytics", mode="status", status=429, retry_after=3, count=1)
    emulator.add_fault(
        route="analytics", mode="status", status=403, code="missing.any.permissions", count=1
    )
    with api(emulator) as http:
        limited = http.post(QUERY, json={"interval": _interval(emulator.base_url)})
        assert_error(limited, 429, "too.many.requests")
        assert limited.headers["Retry-After"] == "3"
        assert_error(
            http.post(QUERY, json={"interval": _interval(emulator.base_url)}),
            403,
            "missing.any.permissions",
        )
        assert http.post(QUERY, json={"interval": _interval(emulator.base_url)}).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "interval"),
        ({"interval": "yesterday"}, "interval"),
        ({"interval": "2026-11-30T10:00:00Z/2026-11-30T09:00:00Z"}, "interval"),
        ({"interval": "2026-11-30T10:00:00Z/2026-11-30T11:00:00Z", "colour": 1}, "colour"),
        ({"interval": "2026-11-30T10:00:00Z/2026-11-30T11:00:00Z", "order": "up"}, "order"),
        (
            {"interval": "2026-11-30T10:00:00Z/P1D", "paging": {"pageSize": 10}},
            "interval",
        ),
        (
            {
                "interval": "2026-11-30T10:00:00Z/2026-11-30T11:00:00Z",
                "segmentFilters": [
                    {"type": "and", "predicates": [{"dimension": "shoeSize", "value": "9"}]}
                ],
            },
            "segmentFilters[0].predicates[0].dimension",
        ),
        (
            {
                "interval": "2026-11-30T10:00:00Z/2026-11-30T11:00:00Z",
                "segmentFilters": [
                    {
                        "type": "and",
                        "clauses": [
                            {
                                "type": "or",
                                "predicates": [{"type": "metric", "metric": "tSegmentDuration"}],
                            }
                        ],
                    }
                ],
            },
            "segmentFilters[0].clauses[0].predicates[0].type",
        ),
        (
            {
                "interval": "2026-11-30T10:00:00Z/2026-11-30T11:00:00Z",
                "conversationFilters": [
                    {"type": "and", "predicates": [{"dimension": "userId", "value": ALICE}]}
                ],
            },
            "conversationFilters[0].predicates[0].dimension",
        ),
        (
            {"interval": "2026-11-30T10:00:00Z/2026-11-30T11:00:00Z", "paging": {"pageNumber": 0}},
            "paging.pageNumber",
        ),
    ],
)
def test_bad_queries_name_the_field(
    emulator: EmulatorServer, body: dict[str, Any], field: str
) -> None:
    with api(emulator) as http:
        error = assert_error(http.post(QUERY, json=body), 400, "bad.request")
        assert_error(
            http.post(QUERY, content=b"[1", headers={"Content-Type": "application/json"}),
            400,
            "bad.request",
        )
    assert error["details"][0]["fieldName"] == field, error
    assert emulator.request_counts()["internalErrors"] == 0


def test_attributes_reach_get_conversation_and_notification_frames(
    emulator: EmulatorServer,
) -> None:
    with api(emulator) as http:
        channel = http.post("/api/v2/notifications/channels").json()
        topic = f"v2.users.{ALICE}.conversations.calls"
        http.put(
            f"/api/v2/notifications/channels/{channel['id']}/subscriptions", json=[{"id": topic}]
        )
        with connect(channel["connectUri"]) as ws:
            call_id = _create(http, "+14155550107", attributes=ATTEMPT)
            seen: list[dict[str, Any]] = []
            while not any(len(f["eventBody"].get("participants", [])) == 2 for f in seen):
                frame = json.loads(ws.recv(timeout=10))
                if frame["topicName"] == topic:
                    seen.append(frame)
        customer = [
            p
            for f in seen
            for p in f["eventBody"]["participants"]
            if p["purpose"] in ("external", "customer")
        ]
        assert customer[0]["attributes"] == ATTEMPT
        got = http.get(f"/api/v2/conversations/calls/{call_id}").json()
    [dialed] = [p for p in got["participants"] if p["purpose"] == "external"]
    assert dialed["attributes"] == ATTEMPT


def test_admin_analytics_knobs_are_checked(emulator: EmulatorServer) -> None:
    with httpx.Client(base_url=emulator.base_url) as http:
        shown = http.get("/_emulator/analytics").json()
        assert shown == {
            "ingestionDelay": 90.0,
            "includeAttributes": True,
            "fillerConversations": 0,
        }
        for bad in (
            {"ingestionDelay": -1},
            {"fillerConversations": "many"},
            {"colour": 1},
            {"includeAttributes": "yes"},
        ):
            assert_error(http.post("/_emulator/analytics", json=bad), 400, "bad.request")
        emulator.set_analytics(ingestion_delay=5)
        emulator.reset()
        assert http.get("/_emulator/analytics").json()["ingestionDelay"] == 90.0


def test_the_date_header_tells_the_simulated_time(emulator: EmulatorServer) -> None:
    emulator.set_speed(100_000)
    time.sleep(0.05)  # at least 5,000 simulated seconds
    emulator.set_speed(1)  # then real time, so a loaded machine cannot stretch the gap below
    with api(emulator) as http:
        response = http.get(f"/api/v2/users/{ALICE}")
    said = parsedate_to_datetime(response.headers["date"])
    clock = datetime.fromisoformat(httpx.get(emulator.base_url + "/_emulator/clock").json()["time"])
    assert len(response.headers.get_list("date")) == 1
    assert timedelta(0) <= clock - said < timedelta(hours=2)
    assert said - datetime.now(UTC) > timedelta(hours=1)
