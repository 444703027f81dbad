"""Notification channels, subscriptions and the WebSocket, driven with a real websockets client."""

import contextlib
import json
import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from gcdial.emulator import EmulatorServer

from .helpers import ALICE, BOB, api, assert_error, place_call

CHANNELS = "/api/v2/notifications/channels"
USER_TOPIC = f"v2.users.{ALICE}.conversations.calls"


def _channel(http: httpx.Client, topics: list[str] | None = None) -> dict[str, Any]:
    response = http.post(CHANNELS)
    assert response.status_code == 200, response.text
    channel: dict[str, Any] = response.json()
    if topics:
        put = http.put(
            f"{CHANNELS}/{channel['id']}/subscriptions", json=[{"id": t} for t in topics]
        )
        assert put.status_code == 200, put.text
    return channel


def _frames(ws: ClientConnection, *, until: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(ws.recv(timeout=max(0.0, deadline - time.monotonic())))
        frames.append(frame)
        if until(frame):
            return frames


def _drain(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every frame until the server closes the socket (fails if it stays open 5 s)."""
    frames = []
    try:
        while True:
            frames.append(json.loads(ws.recv(timeout=5)))
    except ConnectionClosed:
        return frames


def _is_over(frame: dict[str, Any]) -> bool:
    body = frame.get("eventBody", {})
    parts = body.get("participants", [])
    return bool(parts) and all(p["state"] == "disconnected" for p in parts)


def test_channel_shape(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        channel = _channel(http)
        listed = http.get(CHANNELS).json()["entities"]
        head = http.head(f"{CHANNELS}/{channel['id']}")
    host = emulator.base_url.removeprefix("http://")
    assert channel["connectUri"] == f"ws://{host}/channels/{channel['id']}"
    expires = datetime.fromisoformat(channel["expires"].replace("Z", "+00:00"))
    assert expires > datetime.now(expires.tzinfo)
    assert [c["id"] for c in listed] == [channel["id"]]
    assert head.status_code == 200


def test_user_topic_gets_a_frame_per_change(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        channel = _channel(http, [USER_TOPIC])
        with connect(channel["connectUri"]) as ws:
            call_id = place_call(http, "+14155550110")
            frames = _frames(ws, until=_is_over)
    calls = [f for f in frames if f["topicName"] == USER_TOPIC]
    assert all(f["eventBody"]["id"] == call_id for f in calls)
    assert all(f["version"] == "2" and f["metadata"]["CorrelationId"] for f in calls)
    states = [tuple(p["state"] for p in f["eventBody"]["participants"]) for f in calls]
    assert states == [
        ("alerting",),
        ("connected", "dialing"),
        ("connected", "connected"),
        ("disconnected", "disconnected"),
    ]


def test_conversation_topic_and_other_users_are_filtered(emulator: EmulatorServer) -> None:
    emulator.set_speed(0.01)
    with api(emulator) as http:
        other = place_call(http, "+14155550110", user=BOB)
        call_id = place_call(http, "+14155550177")
        channel = _channel(http, [f"v2.conversations.calls.{call_id}"])
        with connect(channel["connectUri"]) as ws:
            emulator.set_speed(100.0)
            frames = _frames(ws, until=_is_over)
        http.patch(f"/api/v2/conversations/calls/{other}", json={"state": "disconnected"})
    assert {
        f["eventBody"]["id"] for f in frames if "eventBody" in f and "id" in f["eventBody"]
    } == {call_id}


def test_heartbeat_and_ping(emulator: EmulatorServer) -> None:
    emulator.set_speed(300.0)
    with api(emulator) as http:
        channel = _channel(http)
    with connect(channel["connectUri"]) as ws:
        ws.send(json.dumps({"message": "ping"}))
        pong = json.loads(ws.recv(timeout=5))
        assert pong["eventBody"]["message"] == "pong"
        beat = json.loads(ws.recv(timeout=5))
    assert beat == {
        "topicName": "channel.metadata",
        "eventBody": {"message": "WebSocket Heartbeat"},
    }


@pytest.mark.parametrize("warn", [True, False])
def test_admin_close_websockets(emulator: EmulatorServer, warn: bool) -> None:
    emulator.set_speed(1.0)
    with api(emulator) as http:
        channel = _channel(http)
    with connect(channel["connectUri"]) as ws:
        assert emulator.close_websockets(warn=warn) == 1
        received = _drain(ws)
    topics = [f["topicName"] for f in received]
    assert topics == (["v2.system.socket_closing"] if warn else [])
    with api(emulator) as http:
        assert http.head(f"{CHANNELS}/{channel['id']}").status_code == 200


def test_channel_expiry_warns_then_closes(make_emulator: Any) -> None:
    emu = make_emulator(
        speed=400.0, channel_lifetime_s=120, socket_closing_lead_s=60, heartbeat_interval_s=1000
    )
    with api(emu) as http:
        channel = _channel(http)
        with connect(channel["connectUri"]) as ws:
            warning = json.loads(ws.recv(timeout=5))
            assert warning["topicName"] == "v2.system.socket_closing"
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)
        assert http.head(f"{CHANNELS}/{channel['id']}").status_code == 404
        with pytest.raises(InvalidStatus) as rejected:
            connect(channel["connectUri"])
    assert rejected.value.response.status_code == 404


def test_unknown_channel_is_rejected(emulator: EmulatorServer) -> None:
    url = emulator.base_url.replace("http://", "ws://") + "/channels/nope"
    with pytest.raises(InvalidStatus) as rejected:
        connect(url)
    assert rejected.value.response.status_code == 404


def test_subscriptions_crud(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        channel = _channel(http)
        subs = f"{CHANNELS}/{channel['id']}/subscriptions"
        assert http.get(subs).json() == {"entities": []}
        http.put(subs, json=[{"id": USER_TOPIC}])
        conv = "v2.conversations.calls.99999999-9999-4999-8999-999999999999"
        added = http.post(subs, json=[{"id": conv}, {"id": USER_TOPIC}]).json()
        assert added == {"entities": [{"id": USER_TOPIC}, {"id": conv}]}
        assert http.delete(subs).status_code == 204
        assert http.get(subs).json() == {"entities": []}
        assert_error(http.put(subs, json=[{"id": "v2.users.x.presence"}]), 400, "bad.request")
        assert_error(http.put(subs, json={"id": USER_TOPIC}), 400, "bad.request")
        assert_error(
            http.put(subs, content=b"[{", headers={"Content-Type": "application/json"}),
            400,
            "bad.request",
        )
        bad_user = "v2.users.99999999-9999-4999-8999-999999999999.conversations.calls"
        assert_error(http.put(subs, json=[{"id": bad_user}]), 400, "bad.request")
        assert_error(http.get(f"{CHANNELS}/nope/subscriptions"), 404, "not.found")
    with api(emulator) as someone_else:
        # another token of the same OAuth client owns the same channels
        assert someone_else.get(subs).status_code == 200
    assert emulator.request_counts()["internalErrors"] == 0


def _fill(http: httpx.Client, n: int) -> list[dict[str, Any]]:
    return [_channel(http) for _ in range(n)]


def test_channel_limit_replaces_the_oldest_idle_channel(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        first, second, *_ = _fill(http, 20)
        with connect(first["connectUri"]):
            newest = _channel(http)
            ids = {c["id"] for c in http.get(CHANNELS).json()["entities"]}
        assert len(ids) == 20
        assert first["id"] in ids
        assert second["id"] not in ids
        assert newest["id"] in ids


def test_channel_limit_rejects_when_every_channel_is_connected(make_emulator: Any) -> None:
    emu = make_emulator(channel_limit=3)
    with api(emu) as http:
        channels = _fill(http, 3)
        with contextlib.ExitStack() as stack:
            for channel in channels:
                stack.enter_context(connect(channel["connectUri"]))
            body = assert_error(http.post(CHANNELS), 400, "channel.limit.exceeded")
    assert body["limit"]["value"] == 3


def test_channel_limit_reject_mode(make_emulator: Any) -> None:
    emu = make_emulator(channel_limit=2, channel_limit_mode="reject")
    with api(emu) as http:
        _fill(http, 2)
        assert_error(http.post(CHANNELS), 400, "channel.limit.exceeded")


def test_reset_closes_sockets(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        channel = _channel(http)
    with connect(channel["connectUri"]) as ws:
        emulator.reset()
        assert _drain(ws) == []
