"""Every answer the emulator gives, held to the official models (see ``model_facts``).

A recorder sees every HTTP exchange and every WebSocket frame of the drive below. The model an
answer must follow is looked up from its route (or topic) in the official extract, never chosen
here; and every Platform API route the emulator serves must have been driven, to a success and to
an error, so a new route cannot escape the check.
"""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.routing import Route
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from gcdial.emulator import EmulatorConfig, EmulatorServer, create_app

from .helpers import ALICE, DAVE, api, call_over, client_token, user_token, wait_for
from .model_facts import (
    MODELS,
    OPERATIONS,
    check,
    check_exchange,
    operation_of,
    self_uris,
    topic_model,
)

SALES = "9ee00001-0000-4000-8000-000000000001"
TEAM = "6a0e0001-0000-4000-8000-000000000001"
SALE = "c0de0001-0000-4000-8000-000000000001"
STATION = "a1a1a1a1-0000-4000-8000-000000000001"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass
class Exchange:
    """One answer: the request, the official operation it went to (None: no such route), the
    status and the parsed body."""

    method: str
    path: str
    operation: str | None
    status: int
    body: Any


@dataclass
class Recorder:
    """Keeps every answer its clients receive and every frame its socket receives."""

    exchanges: list[Exchange] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)

    def _keep(self, response: httpx.Response) -> None:
        response.read()
        request = response.request
        body = response.json() if response.content else None
        path = request.url.path
        self.exchanges.append(
            Exchange(
                request.method,
                path,
                operation_of(request.method, path),
                response.status_code,
                body,
            )
        )

    def client(self, emu: EmulatorServer, token: str | None = None) -> httpx.Client:
        """An API client on ``emu`` whose every answer is kept."""
        http = api(emu, token)
        http.event_hooks = {"response": [self._keep]}
        return http

    def listen(self, ws: ClientConnection) -> threading.Thread:
        """Keep the socket's frames (from a thread) until it closes."""

        def run() -> None:
            try:
                for message in ws:
                    self.frames.append(json.loads(message))
            except ConnectionClosed:
                return

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def _expect(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, (response.request.url, response.text)
    return response.json() if response.content else None


def _agent(body: dict[str, Any]) -> dict[str, Any]:
    agent: dict[str, Any] = next(p for p in body["participants"] if p["purpose"] == "agent")
    return agent


def _drive_directory(http: httpx.Client, me: httpx.Client) -> None:
    user = f"/api/v2/users/{ALICE}"
    _expect(http.get(user), 200)
    _expect(http.get(user, params={"expand": "presence,routingStatus,station"}), 200)
    _expect(http.get("/api/v2/users/nobody"), 404)
    _expect(me.get("/api/v2/users/me", params={"expand": "presence,station"}), 200)
    _expect(http.get("/api/v2/users/me"), 400)
    _expect(http.get(user + "/station"), 200)
    _expect(http.get(f"/api/v2/users/{DAVE}/station"), 200)
    _expect(http.get("/api/v2/users/nobody/station"), 404)
    _expect(http.get(user + "/presences/purecloud"), 200)
    _expect(http.get("/api/v2/users/nobody/presences/purecloud"), 404)
    away = {"presenceDefinition": {"id": "presence-away"}}
    _expect(http.patch(user + "/presences/purecloud", json=away), 200)
    _expect(http.patch(user + "/presences/purecloud", json={}), 400)
    _expect(http.put(user + "/routingstatus", json={"status": "OFF_QUEUE"}), 200)
    _expect(http.put(user + "/routingstatus", json={"status": 5}), 400)
    division = _expect(http.get(user), 200)["division"]["id"]
    _expect(http.get(f"/api/v2/authorization/divisions/{division}"), 200)
    _expect(http.get("/api/v2/authorization/divisions/nope"), 404)
    search = {"query": [{"type": "EXACT", "fields": ["email"], "value": "alice@example.com"}]}
    _expect(http.post("/api/v2/users/search", json=search), 200)
    _expect(http.post("/api/v2/users/search", json={"query": []}), 400)
    _expect(http.get(f"/api/v2/stations/{STATION}"), 200)
    _expect(http.get("/api/v2/stations/nope"), 404)


def _drive_routing(http: httpx.Client) -> None:
    _expect(http.get("/api/v2/routing/queues", params={"pageSize": 1, "pageNumber": 2}), 200)
    _expect(http.get("/api/v2/routing/queues", params={"pageSize": 0}), 400)
    _expect(http.get(f"/api/v2/routing/queues/{SALES}"), 200)
    _expect(http.get("/api/v2/routing/queues/nope"), 404)
    _expect(http.get(f"/api/v2/routing/queues/{SALES}/wrapupcodes"), 200)
    _expect(http.get("/api/v2/routing/queues/nope/wrapupcodes"), 404)
    _expect(http.get(f"/api/v2/routing/queues/{SALES}/members", params={"pageSize": 3}), 200)
    _expect(
        http.get(
            f"/api/v2/routing/queues/{SALES}/members", params={"pageSize": 3, "pageNumber": 2}
        ),
        200,
    )
    _expect(http.get(f"/api/v2/routing/queues/{SALES}/members", params={"pageSize": 101}), 400)
    _expect(http.get("/api/v2/routing/queues/nope/members"), 404)
    _expect(http.get("/api/v2/groups", params={"pageSize": 1}), 200)
    _expect(http.get("/api/v2/groups", params={"pageSize": 0}), 400)
    _expect(http.get(f"/api/v2/groups/{TEAM}"), 200)
    _expect(http.get("/api/v2/groups/nope"), 404)
    _expect(http.get(f"/api/v2/groups/{TEAM}/members", params={"pageSize": 2}), 200)
    _expect(http.get("/api/v2/groups/nope/members"), 404)
    _expect(http.get("/api/v2/routing/wrapupcodes", params={"pageSize": 2}), 200)
    _expect(http.get("/api/v2/routing/wrapupcodes", params={"pageNumber": "x"}), 400)
    _expect(http.get(f"/api/v2/routing/wrapupcodes/{SALE}"), 200)
    _expect(http.get("/api/v2/routing/wrapupcodes/nope"), 404)


def _drive_channel(http: httpx.Client) -> dict[str, Any]:
    channels = "/api/v2/notifications/channels"
    channel: dict[str, Any] = _expect(http.post(channels), 200)
    _expect(http.get(channels), 200)
    _expect(http.head(f"{channels}/{channel['id']}"), 200)
    _expect(http.head(f"{channels}/nope"), 404)
    subs = f"{channels}/{channel['id']}/subscriptions"
    _expect(http.post(subs, json=[{"id": f"v2.users.{ALICE}.presence"}]), 200)
    _expect(http.delete(subs), 204)
    topics = [
        {"id": f"v2.users.{ALICE}.conversations.calls"},
        {"id": f"v2.users.{ALICE}.presence"},
        {"id": f"v2.users.{ALICE}.routingStatus"},
    ]
    _expect(http.put(subs, json=topics), 200)
    _expect(http.get(subs), 200)
    _expect(http.put(subs, json=[{"id": "v2.nothing"}]), 400)
    _expect(http.post(subs, json={}), 400)
    _expect(http.get(f"{channels}/nope/subscriptions"), 404)
    _expect(http.delete(f"{channels}/nope/subscriptions"), 404)
    return channel


def _create(http: httpx.Client, number: str, **extra: Any) -> str:
    body = {"phoneNumber": number, **extra}
    created = _expect(http.post(f"/api/v2/conversations/calls/user/{ALICE}", json=body), 200)
    call_id: str = created["id"]
    return call_id


def _wait_over(http: httpx.Client, call_id: str) -> None:
    wait_for(lambda: call_over(http, call_id))


def _drive_calls(emu: EmulatorServer, http: httpx.Client, me: httpx.Client) -> dict[str, str]:
    """Calls in every state and outcome, after-call work and its PATCHes; answers the ids the
    content-type drive needs."""
    calls = "/api/v2/conversations/calls"
    queued = _create(
        http,
        "+14155550210",
        callFromQueueId=SALES,
        attributes={"k": "v"},
        callerId="+13175550000",
    )
    _expect(http.get(f"{calls}/{queued}"), 200)
    # A call that is still up when hung up: whole call, then a participant of another.
    talking = _create(http, "+14155550149")
    wait_for(lambda: len(_expect(http.get(f"{calls}/{talking}"), 200)["participants"]) == 2)
    _expect(http.patch(f"{calls}/{talking}", json={"state": "disconnected"}), 202)
    _expect(http.patch(f"{calls}/{talking}", json={"state": "connected"}), 400)
    other = _create(http, "+14155550148")
    agent_id = _agent(_expect(http.get(f"{calls}/{other}"), 200))["id"]
    leg = f"{calls}/{other}/participants/{agent_id}"
    _expect(http.patch(leg, json={"state": "disconnected"}), 202)
    _expect(http.patch(f"{calls}/{other}/participants/nope", json={"state": "disconnected"}), 404)
    _expect(me.post(calls, json={"phoneNumber": "+14155550100"}), 200)
    _expect(http.post(calls, json={"phoneNumber": "+14155550100"}), 400)
    _expect(http.post(f"{calls}/user/{ALICE}", json={"phoneNumber": "1"}), 400)
    _expect(http.post(f"{calls}/user/{DAVE}", json={"phoneNumber": "+14155550100"}), 400)
    _expect(http.get(f"{calls}/nope"), 404)
    _expect(http.patch(f"{calls}/nope", json={"state": "disconnected"}), 404)
    never = _create(http, "+14155550500", callFromQueueId=SALES)
    outcomes = [_create(http, f"+141555501{nn}") for nn in ("55", "65", "75", "85", "92", "97")]
    emu.set_speed(3000)
    for call_id in [queued, never, *outcomes]:
        _wait_over(http, call_id)
        _expect(http.get(f"{calls}/{call_id}"), 200)
    # A PATCH of an ended call answers its Conversation, unanswered legs included.
    _expect(http.patch(f"{calls}/{outcomes[0]}", json={"state": "disconnected"}), 202)
    _expect(http.patch(f"{calls}/{outcomes[-2]}", json={"state": "disconnected"}), 202)
    wait_for(lambda: "wrapup" in _agent(_expect(http.get(f"{calls}/{queued}"), 200)))
    agent = _agent(_expect(http.get(f"{calls}/{never}"), 200))
    acw = f"{calls}/{never}/participants/{agent['id']}"
    _expect(http.patch(acw, json={"wrapup": {"notes": "no code"}}), 400)
    _expect(http.patch(acw, json={"wrapupSkipped": True}), 400)
    _expect(http.patch(acw, json={"wrapup": {"code": SALE, "notes": "by hand"}}), 202)
    _expect(http.get(f"{calls}/{never}"), 200)
    return {
        "userId": ALICE,
        "conversationId": never,
        "participantId": agent["id"],
    }


def _drive_details(emu: EmulatorServer, http: httpx.Client) -> None:
    query_path = "/api/v2/analytics/conversations/details/query"
    now = datetime.fromisoformat(httpx.get(emu.base_url + "/_emulator/clock").json()["time"])
    interval = f"{(now - timedelta(hours=1)).isoformat()}/{(now + timedelta(hours=1)).isoformat()}"
    found = _expect(
        http.post(query_path, json={"interval": interval, "paging": {"pageSize": 100}}), 200
    )
    assert any(
        s["segmentType"] == "wrapup"
        for c in found["conversations"]
        for p in c["participants"]
        for s in p["sessions"][0]["segments"]
    )
    emu.set_analytics(filler_conversations=3)
    _expect(http.post(query_path, json={"interval": interval}), 200)
    _expect(http.post(query_path, json={}), 400)


def _drive_faults(emu: EmulatorServer, http: httpx.Client) -> None:
    emu.add_fault(route="get_call", mode="status", status=503, count=1)
    _expect(http.get("/api/v2/conversations/calls/any"), 503)
    emu.add_fault(route="create_call", mode="status_after_create", status=500, count=1)
    _expect(
        http.post(
            f"/api/v2/conversations/calls/user/{ALICE}", json={"phoneNumber": "+14155550100"}
        ),
        500,
    )
    emu.add_fault(route="routing", mode="status", status=429, retry_after=2, count=1)
    _expect(http.get("/api/v2/routing/queues"), 429)
    _expect(http.delete(f"/api/v2/users/{ALICE}"), 405)
    _expect(http.get("/api/v2/nowhere"), 404)


def _concrete(operation: str, ids: dict[str, str]) -> str:
    path = operation.split(" ", 1)[1]
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    return path.replace("{channelId}", "nope")


def _drive_content_types(http: httpx.Client, ids: dict[str, str]) -> None:
    """Every route that takes a JSON body refuses any other content type with 415."""
    for operation in OPERATIONS:
        method = operation.split(" ", 1)[0]
        if method in BODY_METHODS:
            response = http.request(
                method,
                _concrete(operation, ids),
                content=b'{"phoneNumber": "+14155550100"}',
                headers={"Content-Type": "text/plain"},
            )
            _expect(response, 415)


def _drive(emu: EmulatorServer) -> Recorder:
    recorder = Recorder()
    emu.set_analytics(ingestion_delay=0)
    with recorder.client(emu) as http, recorder.client(emu, user_token(emu)) as me:
        channel = _drive_channel(http)
        with connect(channel["connectUri"]) as ws:
            listener = recorder.listen(ws)
            _drive_directory(http, me)
            _drive_routing(http)
            ids = _drive_calls(emu, http, me)
            wait_for(
                lambda: any(
                    "wrapup" in _agent(f["eventBody"])
                    for f in recorder.frames
                    if "participants" in f.get("eventBody", {})
                )
            )
        listener.join(timeout=5)
        _drive_details(emu, http)
        _drive_content_types(http, ids)
        _drive_faults(emu, http)
    with recorder.client(emu, "not-a-token") as stranger:
        _expect(stranger.get(f"/api/v2/users/{ALICE}"), 401)
        _expect(stranger.get("/api/v2/notifications/channels"), 401)
    with recorder.client(emu, client_token(emu)) as http:
        http.headers.pop("Authorization")
        _expect(http.get("/api/v2/routing/wrapupcodes"), 401)
    return recorder


@pytest.fixture(scope="module")
def driven(emulator_server: EmulatorServer) -> Iterator[Recorder]:
    """The whole drive, once for the module, on a freshly reset emulator."""
    emulator_server.reset()
    emulator_server.set_speed(50)
    recorder = _drive(emulator_server)
    assert emulator_server.request_counts()["internalErrors"] == 0
    yield recorder
    emulator_server.reset()
    emulator_server.set_speed(50)


def test_every_answer_follows_the_official_model_of_its_route(driven: Recorder) -> None:
    problems = []
    for exchange in driven.exchanges:
        label = f"{exchange.method} {exchange.path} -> {exchange.status}"
        if exchange.operation is None:
            if exchange.status not in (404, 405):
                problems.append(f"{label}: no such operation in the official API")
            problems += [f"{label}: {p}" for p in check(exchange.body, "ErrorBody")]
        elif exchange.method == "HEAD":
            if exchange.body is not None or exchange.status not in (200, 404):
                problems.append(f"{label}: a HEAD answers 200 or 404 without a body")
        else:
            problems += [
                f"{label}: {p}"
                for p in check_exchange(exchange.operation, exchange.status, exchange.body)
            ]
    assert not problems, "\n".join(problems)


def test_every_frame_follows_the_official_model_of_its_topic(driven: Recorder) -> None:
    topics = {f["topicName"] for f in driven.frames}
    assert {
        f"v2.users.{ALICE}.conversations.calls",
        f"v2.users.{ALICE}.presence",
        f"v2.users.{ALICE}.routingStatus",
    } <= topics
    problems = []
    for index, frame in enumerate(driven.frames):
        if frame["topicName"] == "channel.metadata":
            continue
        assert set(frame) <= {"topicName", "version", "eventBody", "metadata"}, frame
        model = topic_model(frame["topicName"])
        problems += [
            f"frame {index} {frame['topicName']}: {p}" for p in check(frame["eventBody"], model)
        ]
    assert not problems, "\n".join(problems)


def test_every_route_is_driven_to_a_success_and_an_error(driven: Recorder) -> None:
    succeeded = {e.operation for e in driven.exchanges if e.status < 400}
    failed = {e.operation for e in driven.exchanges if e.status >= 400}
    assert set(OPERATIONS) - succeeded == set()
    assert set(OPERATIONS) - failed == set()
    assert {e.status for e in driven.exchanges} >= {
        200,
        202,
        204,
        400,
        401,
        404,
        405,
        415,
        429,
        500,
        503,
    }


def test_the_extract_covers_every_route_the_emulator_serves() -> None:
    """A route added to the emulator must be added to the extract (``make official-models``),
    which refuses a route the official API does not have."""
    served = set()
    for route in create_app(EmulatorConfig()).routes:
        if isinstance(route, Route) and route.path.startswith("/api/"):
            methods = set(route.methods or ()) - (
                {"HEAD"} if "GET" in (route.methods or ()) else set()
            )
            served |= {f"{method} {route.path}" for method in methods}
    assert served == set(OPERATIONS)


def test_every_self_uri_answers_a_get(driven: Recorder, emulator_server: EmulatorServer) -> None:
    uris = set().union(*(self_uris(e.body) for e in driven.exchanges if e.status < 400))
    uris = {uri.split("?")[0] for uri in uris}
    for prefix in ("stations", "routing/wrapupcodes", "routing/queues", "conversations/calls"):
        assert any(u.startswith(f"/api/v2/{prefix}/") for u in uris), prefix
    with api(emulator_server) as http:
        statuses = {uri: http.get(uri).status_code for uri in sorted(uris)}
    assert {uri: status for uri, status in statuses.items() if status != 200} == {}


@pytest.mark.parametrize(
    ("body", "model", "expected"),
    [
        ({"id": "x", "name": None, "selfUri": "/a"}, "CreateCallResponse", "null"),
        ({"id": "x", "selfUri": "/a", "colour": "red"}, "CreateCallResponse", "no field"),
        ({"id": 5}, "CreateCallResponse", "must be a string"),
        (
            {
                "total": 0,
                "pageCount": 1,
                "pageSize": 25,
                "pageNumber": 1,
                "results": [],
                "types": [],
            },
            "UsersSearchResponse",
            None,
        ),
        (
            {"total": 0, "pageCount": 1, "pageSize": 25, "pageNumber": 1, "results": []},
            "UsersSearchResponse",
            "types: required",
        ),
        (
            {"id": "c", "participants": [{"id": "p", "state": "ringing"}], "selfUri": "/c"},
            "CallConversation",
            "'ringing' is not one of",
        ),
        (
            {"id": "c", "participants": [{"disconnectType": "timeout"}]},
            "CallConversation",
            "'timeout' is not one of",
        ),
        (
            {"id": "c", "participants": [], "startTime": "2026-01-01T00:00:00"},
            "Conversation",
            "no time zone",
        ),
        ({"id": "c", "participants": [], "startTime": "x"}, "Conversation", "not an ISO 8601"),
        ({"wrapupRequired": "yes"}, "CallMediaParticipant", "true or false"),
        ({"wrapupTimeoutMs": 1.5}, "CallMediaParticipant", "must be an integer"),
        ({"attributes": {"a": 1}}, "CallMediaParticipant", "must be a string"),
        (
            {"totalHits": 1, "conversations": {}},
            "AnalyticsConversationQueryResponse",
            "must be a list",
        ),
    ],
)
def test_the_checker_catches_each_kind_of_break(
    body: dict[str, Any], model: str, expected: str | None
) -> None:
    problems = check(body, model)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def test_the_extract_names_its_source() -> None:
    from .model_facts import EXTRACT

    source = EXTRACT["source"]
    assert source["package"] == "PureCloudPlatformClientV2"
    assert source["version"]
    assert "ErrorBody" in MODELS


@pytest.mark.parametrize(
    ("operation", "status", "body", "expected"),
    [
        ("GET /api/v2/routing/wrapupcodes", 418, {"message": "m"}, "not a Platform API status"),
        ("GET /api/v2/routing/wrapupcodes", 200, None, "without a body"),
        (
            "PATCH /api/v2/conversations/calls/{conversationId}/participants/{participantId}",
            202,
            {"id": "x"},
            "answers no body",
        ),
        ("GET /api/v2/routing/wrapupcodes/{codeId}", 200, {"id": "x"}, "name: required"),
        ("GET /api/v2/users/{userId}", 404, {"message": "m", "colour": "red"}, "no field"),
    ],
)
def test_the_exchange_check_catches_statuses_and_bodies(
    operation: str, status: int, body: Any, expected: str
) -> None:
    problems = check_exchange(operation, status, body)
    assert any(expected in p for p in problems), problems


def test_requests_find_their_official_operation() -> None:
    assert operation_of("GET", "/api/v2/users/me") == "GET /api/v2/users/me"
    assert operation_of("GET", f"/api/v2/users/{ALICE}") == "GET /api/v2/users/{userId}"
    assert operation_of("DELETE", f"/api/v2/users/{ALICE}") is None
    assert topic_model(f"v2.users.{ALICE}.conversations.calls") == (
        "ConversationCallEventTopicCallConversation"
    )


def test_the_rate_limiter_answers_an_error_body(make_emulator: Any) -> None:
    recorder = Recorder()
    emu = make_emulator(rate_limit_per_minute=2)
    with recorder.client(emu) as http:
        statuses = [http.get("/api/v2/routing/wrapupcodes").status_code for _ in range(3)]
    assert statuses[-1] == 429
    problems = [
        p
        for e in recorder.exchanges
        if e.operation is not None
        for p in check_exchange(e.operation, e.status, e.body)
    ]
    assert not problems, "\n".join(problems)
