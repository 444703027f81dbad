"""Notification channels, topic subscriptions and the WebSocket that pushes call events.

Each connected channel gets a frame per participant change on a subscribed topic, a heartbeat
every ``heartbeat_interval_s`` and, before the server closes it, ``v2.system.socket_closing``.
"""

import asyncio
import contextlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from gcdial._shared import HEARTBEAT_TOPIC, SOCKET_CLOSING_TOPIC
from gcdial.emulator.auth import require_token
from gcdial.emulator.errorbody import ApiError, bad_request, not_found
from gcdial.emulator.fixtures import UserSpec
from gcdial.emulator.requestbody import read_json
from gcdial.emulator.state import Call, EmulatorState, Token
from gcdial.emulator.users import presence_json, routing_status_json

USER_CALLS_TOPIC = re.compile(r"^v2\.users\.([0-9a-fA-F-]{36})\.conversations\.calls$")
CONVERSATION_TOPIC = re.compile(r"^v2\.conversations\.calls\.([0-9a-fA-F-]{36})$")
USER_STATE_TOPIC = re.compile(r"^v2\.users\.([0-9a-fA-F-]{36})\.(presence|routingStatus)$")
MAX_TOPICS_PER_CHANNEL = 1000
CLOSE_GOING_AWAY = 1001


@dataclass
class _Close:
    code: int


@dataclass
class Connection:
    """One live WebSocket on a channel: frames to send go through ``outbox``."""

    outbox: "asyncio.Queue[dict[str, Any] | _Close]" = field(default_factory=asyncio.Queue)

    def push(self, frame: dict[str, Any]) -> None:
        """Queue a frame for sending."""
        self.outbox.put_nowait(frame)

    def close(self, *, warn: bool, code: int = CLOSE_GOING_AWAY) -> None:
        """Close from the server side, optionally announcing it with ``socket_closing``."""
        if warn:
            self.push(socket_closing_frame())
        self.outbox.put_nowait(_Close(code))


@dataclass
class Channel:
    """A notification channel owned by one user or OAuth client."""

    id: str
    owner: str
    created_at: float
    expires_at: float
    topics: list[str] = field(default_factory=list)
    connection: Connection | None = None


def socket_closing_frame() -> dict[str, Any]:
    """The frame Genesys sends before it closes a socket."""
    return {
        "topicName": SOCKET_CLOSING_TOPIC,
        "version": "2",
        "eventBody": {"message": "The socket will be closed soon; reconnect."},
    }


def heartbeat_frame() -> dict[str, Any]:
    """The periodic heartbeat frame."""
    return {"topicName": HEARTBEAT_TOPIC, "eventBody": {"message": "WebSocket Heartbeat"}}


def _owner(token: Token) -> str:
    return f"user:{token.user_id}" if token.user_id else f"client:{token.client_id}"


class NotificationService:
    """Channels, subscriptions and sockets of one emulator."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self.channels: dict[str, Channel] = {}
        state.hub.subscribe(self._on_call_change)
        state.user_listeners.append(self._on_user_change)
        state.on_reset.append(self._forget_all)

    def routes(self) -> list[BaseRoute]:
        """The Platform API and WebSocket routes."""
        base = "/api/v2/notifications/channels"
        subs = base + "/{channelId}/subscriptions"
        return [
            Route(base, self.create_channel, methods=["POST"], name="notifications"),
            Route(base, self.list_channels, methods=["GET"], name="notifications"),
            Route(base + "/{channelId}", self.head_channel, methods=["HEAD"], name="notifications"),
            Route(subs, self.get_subscriptions, methods=["GET"], name="notifications"),
            Route(subs, self.put_subscriptions, methods=["PUT"], name="notifications"),
            Route(subs, self.post_subscriptions, methods=["POST"], name="notifications"),
            Route(subs, self.delete_subscriptions, methods=["DELETE"], name="notifications"),
            WebSocketRoute("/channels/{channelId}", self.websocket),
        ]

    def admin_routes(self) -> list[BaseRoute]:
        """``/_emulator/websockets/close`` and ``/_emulator/channels``."""
        return [
            Route("/_emulator/websockets/close", self.admin_close, methods=["POST"]),
            Route("/_emulator/channels", self.admin_list, methods=["GET"]),
        ]

    def _channel_json(self, request: Request, channel: Channel) -> dict[str, Any]:
        return {
            "id": channel.id,
            "connectUri": f"ws://{request.url.netloc}/channels/{channel.id}",
            "expires": self._state.clock.iso(channel.expires_at),
        }

    def _purge_expired(self) -> None:
        now = self._state.clock.now()
        for channel in list(self.channels.values()):
            if channel.expires_at <= now:
                self._remove(channel, warn=False)

    def _remove(self, channel: Channel, *, warn: bool) -> None:
        self.channels.pop(channel.id, None)
        if channel.connection is not None:
            channel.connection.close(warn=warn)

    def _owned(self, request: Request) -> Channel:
        token = require_token(request, self._state)
        self._purge_expired()
        channel_id = request.path_params["channelId"]
        channel = self.channels.get(channel_id)
        if channel is None or channel.owner != _owner(token):
            raise not_found("channel", channel_id)
        return channel

    async def create_channel(self, request: Request) -> JSONResponse:
        """``POST /api/v2/notifications/channels``."""
        state = self._state
        owner = _owner(require_token(request, state))
        self._purge_expired()
        mine = [c for c in self.channels.values() if c.owner == owner]
        limit = state.config.channel_limit
        if len(mine) >= limit:
            idle = [c for c in mine if c.connection is None]
            if state.config.channel_limit_mode == "reject" or not idle:
                raise ApiError(
                    400,
                    "channel.limit.exceeded",
                    f"The limit of {limit} notification channels per user/app is reached; "
                    "reuse or let an existing channel expire.",
                    limit={"key": "channels", "namespace": "notifications", "value": limit},
                )
            self._remove(min(idle, key=lambda c: c.created_at), warn=False)
        now = state.clock.now()
        channel = Channel(str(uuid.uuid4()), owner, now, now + state.config.channel_lifetime_s)
        self.channels[channel.id] = channel
        return JSONResponse(self._channel_json(request, channel))

    async def list_channels(self, request: Request) -> JSONResponse:
        """``GET /api/v2/notifications/channels``: the caller's channels."""
        owner = _owner(require_token(request, self._state))
        self._purge_expired()
        mine = [self._channel_json(request, c) for c in self.channels.values() if c.owner == owner]
        return JSONResponse({"entities": mine})

    async def head_channel(self, request: Request) -> Response:
        """``HEAD /api/v2/notifications/channels/{channelId}``: does the channel still exist?"""
        self._owned(request)
        return Response(status_code=200)

    async def get_subscriptions(self, request: Request) -> JSONResponse:
        """``GET .../subscriptions``."""
        return _topics_json(self._owned(request))

    async def put_subscriptions(self, request: Request) -> JSONResponse:
        """``PUT .../subscriptions``: replace the topic list."""
        channel = self._owned(request)
        channel.topics = self._parse_topics(await read_json(request))
        return _topics_json(channel)

    async def post_subscriptions(self, request: Request) -> JSONResponse:
        """``POST .../subscriptions``: add topics."""
        channel = self._owned(request)
        added = self._parse_topics(await read_json(request))
        channel.topics += [t for t in added if t not in channel.topics]
        if len(channel.topics) > MAX_TOPICS_PER_CHANNEL:
            del channel.topics[MAX_TOPICS_PER_CHANNEL:]
            raise bad_request(f"A channel holds at most {MAX_TOPICS_PER_CHANNEL} topics.")
        return _topics_json(channel)

    async def delete_subscriptions(self, request: Request) -> Response:
        """``DELETE .../subscriptions``: remove every topic."""
        self._owned(request).topics = []
        return Response(status_code=204)

    def _parse_topics(self, body: Any) -> list[str]:
        if not isinstance(body, list):
            raise bad_request('The body must be a list of topics: [{"id": "v2.users.<id>..."}].')
        topics: list[str] = []
        for index, item in enumerate(body):
            where = f"[{index}].id"
            topic = item.get("id") if isinstance(item, dict) else None
            if not isinstance(topic, str):
                raise bad_request(
                    f"{where}: each topic must be an object with a string 'id'.", field=where
                )
            user = USER_CALLS_TOPIC.match(topic) or USER_STATE_TOPIC.match(topic)
            if user is not None and user.group(1).lower() not in self._state.users:
                raise bad_request(f"{where}: no user {user.group(1)}.", field=where)
            if user is None and CONVERSATION_TOPIC.match(topic) is None:
                raise ApiError(
                    400,
                    "bad.request",
                    f"{where}: unsupported topic {topic!r}; the emulator supports "
                    "v2.users.{userId}.conversations.calls, v2.users.{userId}.presence, "
                    "v2.users.{userId}.routingStatus and v2.conversations.calls.{id}.",
                    details=[{"errorCode": "notification.topic.unsupported", "fieldName": where}],
                )
            if topic not in topics:
                topics.append(topic)
        if len(topics) > MAX_TOPICS_PER_CHANNEL:
            raise bad_request(f"A channel holds at most {MAX_TOPICS_PER_CHANNEL} topics.")
        return topics

    def _on_user_change(self, user: UserSpec, what: str) -> None:
        topic = f"v2.users.{user.id}.{what}"
        if what == "presence":
            body = presence_json(self._state, user, label=False)
        else:
            routing = routing_status_json(self._state, user)
            body = {
                "id": str(user.id),
                "routingStatus": {"status": routing["status"], "startTime": routing["startTime"]},
            }
        self._push({topic, topic.lower()}, body)

    def _on_call_change(self, call: Call) -> None:
        wanted = {
            f"v2.users.{call.user_id}.conversations.calls",
            f"v2.conversations.calls.{call.id}",
        }
        self._push(wanted, call.to_event_json())

    def _push(self, wanted: set[str], body: dict[str, Any]) -> None:
        """A frame with ``body`` to every connected channel subscribed to a ``wanted`` topic."""
        for channel in self.channels.values():
            if channel.connection is None:
                continue
            for topic in channel.topics:
                if topic in wanted or topic.lower() in wanted:
                    channel.connection.push(
                        {
                            "topicName": topic,
                            "version": "2",
                            "eventBody": body,
                            "metadata": {"CorrelationId": str(uuid.uuid4())},
                        }
                    )

    async def websocket(self, ws: WebSocket) -> None:
        """``/channels/{channelId}``: stream the channel's frames until either side closes."""
        self._purge_expired()
        channel = self.channels.get(ws.path_params["channelId"])
        if channel is None:
            error = not_found("channel", ws.path_params["channelId"])
            if "websocket.http.response" in ws.scope.get("extensions", {}):
                await ws.send_denial_response(error.response())
            else:
                await ws.close(code=4004)
            return
        await ws.accept()
        connection = Connection()
        if channel.connection is not None:
            channel.connection.close(warn=False)
        channel.connection = connection
        tasks = [
            asyncio.ensure_future(self._write(ws, connection)),
            asyncio.ensure_future(self._read(ws, connection)),
            asyncio.ensure_future(self._tick(channel, connection)),
        ]
        try:
            await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if channel.connection is connection:
                channel.connection = None

    async def _write(self, ws: WebSocket, connection: Connection) -> None:
        while True:
            frame = await connection.outbox.get()
            try:
                if isinstance(frame, _Close):
                    await ws.close(code=frame.code)
                    return
                await ws.send_text(json.dumps(frame))
            except Exception:
                return

    async def _read(self, ws: WebSocket, connection: Connection) -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            with contextlib.suppress(ValueError, AttributeError):
                if text is not None and json.loads(text).get("message") == "ping":
                    connection.push(
                        {"topicName": HEARTBEAT_TOPIC, "eventBody": {"message": "pong"}}
                    )

    async def _tick(self, channel: Channel, connection: Connection) -> None:
        """Heartbeats, then ``socket_closing`` ahead of the channel's expiry, then the close."""
        clock = self._state.clock
        cfg = self._state.config
        next_beat = clock.now() + cfg.heartbeat_interval_s
        warn_at = channel.expires_at - cfg.socket_closing_lead_s
        warned = False
        while True:
            await clock.sleep_until(min(next_beat, channel.expires_at if warned else warn_at))
            now = clock.now()
            if not warned and now >= warn_at:
                connection.push(socket_closing_frame())
                warned = True
            if now >= channel.expires_at:
                self.channels.pop(channel.id, None)
                connection.close(warn=False)
                return
            if now >= next_beat:
                connection.push(heartbeat_frame())
                next_beat = now + cfg.heartbeat_interval_s

    def close_sockets(self, *, warn: bool) -> int:
        """Close every live socket (channels stay); returns how many."""
        live = [c.connection for c in self.channels.values() if c.connection is not None]
        for connection in live:
            connection.close(warn=warn)
        return len(live)

    def _forget_all(self) -> None:
        for channel in list(self.channels.values()):
            self._remove(channel, warn=False)

    async def close_all(self) -> None:
        """At shutdown: close every socket and forget every channel."""
        self._forget_all()
        await asyncio.sleep(0)

    async def admin_close(self, request: Request) -> JSONResponse:
        """``POST /_emulator/websockets/close`` ``{"warn": true}``."""
        body = await read_json(request) if (await request.body()).strip() else {}
        warn = body.get("warn", True) if isinstance(body, dict) else None
        if not isinstance(warn, bool):
            raise bad_request("'warn' must be true or false.", field="warn")
        return JSONResponse({"closed": self.close_sockets(warn=warn)})

    async def admin_list(self, request: Request) -> JSONResponse:
        """``GET /_emulator/channels``: every channel, its owner, topics and whether connected."""
        self._purge_expired()
        channels = [
            {
                **self._channel_json(request, c),
                "owner": c.owner,
                "topics": c.topics,
                "connected": c.connection is not None,
            }
            for c in self.channels.values()
        ]
        return JSONResponse({"channels": channels})


def _topics_json(channel: Channel) -> JSONResponse:
    return JSONResponse({"entities": [{"id": t} for t in channel.topics]})
