"""Every answer the emulator gives, held to the official models (see ``model_facts``)."""

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from gcdial.emulator import EmulatorServer

from .helpers import ALICE, DAVE, api, wait_for
from .model_facts import check, self_uris

Answer = tuple[str, str, Any]  # (what was asked, model, JSON)


def _json(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _interval(emu: EmulatorServer) -> str:
    now = datetime.fromisoformat(httpx.get(emu.base_url + "/_emulator/clock").json()["time"])
    return f"{(now - timedelta(hours=1)).isoformat()}/{(now + timedelta(hours=1)).isoformat()}"


def _collect(emu: EmulatorServer) -> list[Answer]:
    """Drive every endpoint through a call's life and keep each answer with its model."""
    answers: list[Answer] = []

    def keep(label: str, model: str, body: Any) -> Any:
        answers.append((label, model, body))
        return body

    emu.set_analytics(ingestion_delay=0)
    with api(emu) as http:
        user = f"/api/v2/users/{ALICE}"
        keep("GET user", "User", _json(http.get(user)))
        expanded = _json(http.get(user, params={"expand": "presence,routingStatus,station"}))
        keep("GET user expanded", "User", expanded)
        keep("GET station", "UserStations", _json(http.get(user + "/station")))
        keep("GET no station", "UserStations", _json(http.get(f"/api/v2/users/{DAVE}/station")))
        keep("GET presence", "UserPresence", _json(http.get(user + "/presences/purecloud")))
        search = {"query": [{"type": "EXACT", "fields": ["email"], "value": "alice@example.com"}]}
        keep(
            "POST search",
            "UsersSearchResponse",
            _json(http.post("/api/v2/users/search", json=search)),
        )

        channel = keep(
            "POST channel", "Channel", _json(http.post("/api/v2/notifications/channels"))
        )
        keep(
            "GET channels",
            "ChannelEntityListing",
            _json(http.get("/api/v2/notifications/channels")),
        )
        subs = f"/api/v2/notifications/channels/{channel['id']}/subscriptions"
        topic = [{"id": f"v2.users.{ALICE}.conversations.calls"}]
        keep("PUT subscriptions", "ChannelTopicEntityListing", _json(http.put(subs, json=topic)))
        keep("GET subscriptions", "ChannelTopicEntityListing", _json(http.get(subs)))

        with connect(channel["connectUri"]) as ws:
            body = {
                "phoneNumber": "+14155550185",
                "attributes": {"k": "v"},
                "callerId": "+13175550000",
            }
            created = keep(
                "POST create",
                "CreateCallResponse",
                _json(http.post(f"/api/v2/conversations/calls/user/{ALICE}", json=body)),
            )
            call = f"/api/v2/conversations/calls/{created['id']}"
            keep("GET call (alerting)", "CallConversation", _json(http.get(call)))
            emu.set_speed(2000)
            while True:
                frame = json.loads(ws.recv(timeout=10))
                if frame["topicName"] != topic[0]["id"]:
                    continue
                keep(f"frame {len(answers)}", "CallFrame", frame)
                parts = frame["eventBody"]["participants"]
                if all(p["state"] == "disconnected" for p in parts):
                    break
        keep("GET call (ended, carrier failure)", "CallConversation", _json(http.get(call)))

        other = _json(
            http.post(
                f"/api/v2/conversations/calls/user/{ALICE}", json={"phoneNumber": "+14155550100"}
            )
        )
        wait_for(
            lambda: (
                len(_json(http.get(f"/api/v2/conversations/calls/{other['id']}"))["participants"])
                == 2
            )
        )
        patched = http.patch(
            f"/api/v2/conversations/calls/{other['id']}", json={"state": "disconnected"}
        )
        keep("PATCH call", "CallConversation", _json(patched, 202))

        query = {"interval": _interval(emu), "paging": {"pageSize": 100}}
        keep(
            "POST details query",
            "AnalyticsConversationQueryResponse",
            _json(http.post("/api/v2/analytics/conversations/details/query", json=query)),
        )
        emu.set_analytics(filler_conversations=3)
        keep(
            "POST details query (fillers)",
            "AnalyticsConversationQueryResponse",
            _json(http.post("/api/v2/analytics/conversations/details/query", json=query)),
        )

        errors = [
            http.get("/api/v2/users/nobody"),
            http.post(f"/api/v2/conversations/calls/user/{ALICE}", json={"phoneNumber": "1"}),
            http.post(
                f"/api/v2/conversations/calls/user/{DAVE}", json={"phoneNumber": "+14155550100"}
            ),
            http.post("/api/v2/analytics/conversations/details/query", json={}),
            http.get("/api/v2/nowhere"),
            http.get("/api/v2/users/me"),
        ]
        for response in errors:
            keep(
                f"error {response.request.method} {response.request.url.path}",
                "ErrorBody",
                response.json(),
            )
    with httpx.Client(base_url=emu.base_url) as anonymous:
        keep("error without token", "ErrorBody", anonymous.get(f"/api/v2/users/{ALICE}").json())
    return answers


def test_every_answer_matches_its_model(emulator: EmulatorServer) -> None:
    answers = _collect(emulator)
    problems = [f"{label}: {p}" for label, model, body in answers for p in check(body, model)]
    assert problems == []
    models = {model for _, model, _ in answers}
    assert models >= {
        "User",
        "UserStations",
        "UserPresence",
        "UsersSearchResponse",
        "Channel",
        "ChannelTopicEntityListing",
        "CreateCallResponse",
        "CallConversation",
        "CallFrame",
        "AnalyticsConversationQueryResponse",
        "ErrorBody",
    }
    assert emulator.request_counts()["internalErrors"] == 0


def test_every_self_uri_answers_a_get(emulator: EmulatorServer) -> None:
    uris = set().union(*(self_uris(body) for _, _, body in _collect(emulator)))
    assert any(u.startswith("/api/v2/conversations/calls/") for u in uris)
    assert any(u.startswith("/api/v2/users/") for u in uris)
    assert any(u.startswith("/api/v2/authorization/divisions/") for u in uris)
    with api(emulator) as http:
        failing = {uri: http.get(uri).status_code for uri in sorted(uris)}
    assert {uri: status for uri, status in failing.items() if status != 200} == {}


@pytest.mark.parametrize(
    ("body", "model", "expected"),
    [
        ({"id": "x", "name": None, "selfUri": "/a"}, "CreateCallResponse", "null"),
        ({"id": "x"}, "CreateCallResponse", "selfUri: required"),
        ({"id": "x", "selfUri": "/a", "colour": "red"}, "CreateCallResponse", "no field"),
        (
            {
                "id": "c",
                "participants": [{"id": "p", "purpose": "agent", "state": "ringing"}],
                "selfUri": "/c",
            },
            "CallConversation",
            "'ringing' is not one of",
        ),
        (
            {"totalHits": 1, "conversations": [{"conversationId": 5}]},
            "AnalyticsConversationQueryResponse",
            "must be a string",
        ),
        (
            {
                "message": "m",
                "code": "c",
                "status": 400,
                "contextId": "x",
                "messageParams": {"a": 1},
            },
            "ErrorBody",
            "map of strings",
        ),
    ],
)
def test_the_checker_catches_each_kind_of_break(
    body: dict[str, Any], model: str, expected: str
) -> None:
    problems = check(body, model)
    assert any(expected in p for p in problems), problems
