"""The notifications client: one channel and WebSocket, kept alive, shared by every followed call.

Genesys pushes conversation changes over a WebSocket (``connectUri`` of a channel made with
``POST /api/v2/notifications/channels``) for the topics ``PUT`` on its subscriptions. Sockets die:
the server warns with ``v2.system.socket_closing``, heartbeats stop, channels expire after a day.
:class:`NotificationChannel` reconnects (reusing the channel while it lives, else a new one),
re-subscribes, and then asks its owner to catch up by REST on what the gap may have hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from gcdial._shared import HEARTBEAT_TOPIC, SOCKET_CLOSING_TOPIC
from gcdial.errors import (
    ApiError,
    ChannelUnavailableError,
    GcdialError,
    NotFoundError,
    ResponseFormatError,
)

logger = logging.getLogger("gcdial.monitor")

CHANNELS_PATH: Final = "/api/v2/notifications/channels"

HEARTBEAT_TIMEOUT_S: Final = 75.0
"""Genesys beats every 30 s: two missed heartbeats and some slack mean the socket is dead."""
RECONNECT_INITIAL_S: Final = 0.5
RECONNECT_MAX_S: Final = 15.0
RECONNECT_ATTEMPTS: Final = 5
"""Failed reconnects in a row before the channel gives up (its owner then falls back to polling)."""
RENEW_BEFORE_EXPIRY_S: Final = 600.0
"""Replace a channel this long before its ``expires`` time, rather than let it die mid-call."""
WEBSOCKET_OPEN_TIMEOUT_S: Final = 10.0
MIN_SOCKET_LIFE_S: Final = 30.0
"""A ``socket_closing`` this soon after connecting says the channel itself is ending: replace it."""
SILENT_RECHECK_S: Final = 600.0
"""A followed call silent this long is read by GET (see ``ChannelSettings.silent_recheck_s``)."""


class Transport(Protocol):
    """What the monitor needs of gcdial's HTTP transport (``gcdial.http.AsyncApiTransport``)."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool,
    ) -> httpx.Response:
        """Send one API request; return a 2xx response or raise a ``gcdial.errors`` error."""
        ...


def user_topic(user_id: str) -> str:
    """The topic carrying every call conversation of one user (agent)."""
    return f"v2.users.{user_id}.conversations.calls"


def conversation_topic(conversation_id: str) -> str:
    """The topic carrying one call conversation."""
    return f"v2.conversations.calls.{conversation_id}"


@dataclass(frozen=True)
class Frame:
    """One parsed WebSocket message."""

    topic: str
    body: Mapping[str, Any]

    @property
    def is_heartbeat(self) -> bool:
        """The channel's keep-alive."""
        return self.topic == HEARTBEAT_TOPIC

    @property
    def is_closing(self) -> bool:
        """The server's warning that it will close this socket soon."""
        return self.topic == SOCKET_CLOSING_TOPIC

    def conversation(self) -> Mapping[str, Any] | None:
        """The CallConversation a call-topic frame carries (None if it is not one)."""
        if not (self.topic.startswith("v2.conversations.calls.") or _is_user_calls(self.topic)):
            return None
        if not isinstance(self.body.get("id"), str):
            return None
        return self.body


def _is_user_calls(topic: str) -> bool:
    return topic.startswith("v2.users.") and topic.endswith(".conversations.calls")


def parse_frame(message: str | bytes) -> Frame | None:
    """A WebSocket message as a Frame, or None when it is garbled (not JSON, wrong shape)."""
    try:
        data = json.loads(message)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    topic = data.get("topicName")
    body = data.get("eventBody")
    if not isinstance(topic, str) or not topic:
        return None
    if body is None:
        body = {}
    if not isinstance(body, dict):
        return None
    return Frame(topic=topic, body=body)


def renew_time(
    expires: dt.datetime | None, created: dt.datetime, margin_s: float
) -> dt.datetime | None:
    """When to replace a channel: ``margin_s`` before it expires, but never in its first half.

    The floor keeps a short-lived channel (or a server clock far from ours) from being replaced
    over and over; such a channel is replaced when the server closes it instead.
    """
    if expires is None:
        return None
    lifetime = expires - created
    if lifetime <= dt.timedelta(0):
        return None
    return created + max(lifetime - dt.timedelta(seconds=margin_s), lifetime / 2)


@dataclass(frozen=True)
class ChannelInfo:
    """A created notifications channel."""

    id: str
    connect_uri: str
    expires: dt.datetime | None


def _json_object(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ResponseFormatError(
            f"{what}: the response is not JSON", status=response.status_code
        ) from None


async def create_channel(transport: Transport) -> ChannelInfo:
    """``POST /api/v2/notifications/channels``: a new channel, with its WebSocket address."""
    response = await transport.request("POST", CHANNELS_PATH, idempotent=False)
    body = _json_object(response, "creating a notifications channel")
    if not isinstance(body, dict):
        raise ResponseFormatError("creating a notifications channel: expected a JSON object")
    cid, uri = body.get("id"), body.get("connectUri")
    if not isinstance(cid, str) or not isinstance(uri, str) or not uri.startswith(("ws", "wss")):
        raise ResponseFormatError("creating a notifications channel: no id or connectUri")
    expires = body.get("expires")
    when = None
    if isinstance(expires, str):
        with contextlib.suppress(ValueError):
            when = dt.datetime.fromisoformat(expires)
            when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return ChannelInfo(id=cid, connect_uri=uri, expires=when)


async def put_subscriptions(transport: Transport, channel_id: str, topics: Iterable[str]) -> None:
    """``PUT .../subscriptions``: make ``topics`` the channel's whole subscription list."""
    body = [{"id": topic} for topic in sorted(set(topics))]
    await transport.request(
        "PUT", f"{CHANNELS_PATH}/{channel_id}/subscriptions", json=body, idempotent=True
    )


@dataclass
class ChannelStats:
    """What the channel went through; for tests, benchmarks and ``-v`` output."""

    channels_created: int = 0
    connects: int = 0
    reconnects: int = 0
    subscription_puts: int = 0
    frames: int = 0
    heartbeats: int = 0
    garbled: int = 0
    missed_heartbeats: int = 0
    closing_warnings: int = 0


@dataclass(frozen=True)
class ChannelSettings:
    """Timing of heartbeat tracking and reconnects (real seconds)."""

    heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S
    reconnect_initial_s: float = RECONNECT_INITIAL_S
    reconnect_max_s: float = RECONNECT_MAX_S
    reconnect_attempts: int = RECONNECT_ATTEMPTS
    renew_before_expiry_s: float = RENEW_BEFORE_EXPIRY_S
    open_timeout_s: float = WEBSOCKET_OPEN_TIMEOUT_S
    min_socket_life_s: float = MIN_SOCKET_LIFE_S
    silent_recheck_s: float = SILENT_RECHECK_S
    """A followed call that brings no frame for this long is read once by GET: a frame lost
    without a drop must not leave its follower (and the agent it holds) waiting for hours."""
    verify_tls: bool = True
    """Check the WebSocket's TLS certificate (setting ``verify_tls``, like every API request)."""


class _Reconnect(Exception):
    """Internal: leave the read loop and reconnect; ``new_channel`` when this one is dying."""

    def __init__(self, reason: str, *, new_channel: bool = False) -> None:
        super().__init__(reason)
        self.new_channel = new_channel


SnapshotSink = Callable[[Mapping[str, Any]], None]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class NotificationChannel:
    """One notifications channel + WebSocket, reconnected and re-subscribed on its own.

    ``on_conversation`` gets every call-topic eventBody; ``on_frame`` every other frame (other
    topics, e.g. an agent's presence; heartbeats excluded); ``on_reconnected`` is awaited after each
    reconnect+resubscribe (catch up by REST there); ``on_lost`` is called once if reconnecting
    fails for good, after which the channel is closed.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        on_conversation: SnapshotSink,
        on_reconnected: Callable[[], Awaitable[None]],
        on_lost: Callable[[BaseException], None],
        on_frame: Callable[[Frame], None] | None = None,
        settings: ChannelSettings | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self.transport = transport
        self.on_conversation = on_conversation
        self.on_reconnected = on_reconnected
        self.on_lost = on_lost
        self.on_frame = on_frame
        self.settings = settings or ChannelSettings()
        self.sleep = sleep
        self.clock = clock
        self.wall_clock = wall_clock
        self.stats = ChannelStats()
        self._info: ChannelInfo | None = None
        self._socket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._topics: set[str] = set()
        self._subscribed: set[str] = set()
        self._lock = asyncio.Lock()
        self._closed = False
        self._connected_at = 0.0
        self._renew_at: dt.datetime | None = None
        self.drops = 0
        """Times the socket was lost (dropped, silent, replaced) since the channel was opened."""

    @property
    def channel_id(self) -> str | None:
        """The current channel's id (it changes when the channel is replaced)."""
        return self._info.id if self._info else None

    @property
    def topics(self) -> frozenset[str]:
        """Topics wanted on this channel."""
        return frozenset(self._topics)

    @property
    def connected(self) -> bool:
        """True while a socket is open and being read (not between a drop and a reconnect)."""
        return self.alive and self._socket is not None

    def in_force(self, topic: str) -> bool:
        """Whether the server confirmed ``topic`` on the socket open now: its frames arrive from
        here on (a topic only asked for, or PUT before a reconnect, may not)."""
        return self.connected and topic in self._subscribed

    @property
    def alive(self) -> bool:
        """True while the channel is open or reconnecting."""
        return not self._closed and self._reader is not None and not self._reader.done()

    async def open(self) -> None:
        """Create the channel and connect its WebSocket; ChannelUnavailableError if impossible."""
        try:
            async with self._lock:
                await self._connect(new_channel=True)
        except ChannelUnavailableError:
            raise
        except (GcdialError, OSError, TimeoutError, websockets.WebSocketException) as exc:
            await self._drop_socket()
            raise ChannelUnavailableError(_describe(exc), cause=exc) from exc
        self._reader = asyncio.create_task(self._run(), name="gcdial-notifications")

    async def subscribe(self, topics: Iterable[str]) -> None:
        """Add topics; one PUT of the whole list when something is new, none otherwise."""
        wanted = set(topics)
        async with self._lock:
            if wanted <= self._subscribed:
                self._topics |= wanted
                return
            added = wanted - self._topics
            self._topics |= wanted
            if self._info is None:
                return
            try:
                await self._put_subscriptions()
            except BaseException:
                # A refused topic must not poison every later PUT of the whole list.
                self._topics -= added
                raise

    def forget(self, topics: Iterable[str]) -> None:
        """Drop topics from the wanted list; the server learns of it with the next PUT."""
        self._topics -= set(topics)

    async def close(self) -> None:
        """Stop reading and close the socket (the channel itself expires server-side)."""
        self._closed = True
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await self._drop_socket()

    async def _put_subscriptions(self) -> None:
        assert self._info is not None
        topics = set(self._topics)
        await put_subscriptions(self.transport, self._info.id, topics)
        self.stats.subscription_puts += 1
        self._subscribed = topics

    async def _connect(self, *, new_channel: bool) -> None:
        if new_channel or self._info is None:
            self._info = await create_channel(self.transport)
            self.stats.channels_created += 1
            self._renew_at = renew_time(
                self._info.expires, self.wall_clock(), self.settings.renew_before_expiry_s
            )
            self._subscribed = set()
            logger.info("notifications channel %s created", self._info.id)
        self._socket = await websockets.connect(
            self._info.connect_uri,
            open_timeout=self.settings.open_timeout_s,
            max_size=None,
            ssl=_tls_context(self._info.connect_uri, verify=self.settings.verify_tls),
        )
        self.stats.connects += 1
        self._connected_at = self.clock()
        if self._topics:
            await self._put_subscriptions()

    async def _drop_socket(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            with contextlib.suppress(Exception):
                await socket.close()

    def _expiring(self) -> bool:
        return self._renew_at is not None and self.wall_clock() >= self._renew_at

    async def _run(self) -> None:
        while not self._closed:
            new_channel = False
            try:
                await self._read()
            except _Reconnect as why:
                logger.info("notifications socket: %s; reconnecting", why)
                new_channel = why.new_channel
            except websockets.ConnectionClosed as exc:
                logger.info("notifications socket dropped (%s); reconnecting", exc)
            except Exception as exc:  # whatever broke the socket, a fresh one is the cure
                logger.warning("notifications socket failed (%s); reconnecting", _describe(exc))
            if self._closed:
                return
            self.drops += 1
            try:
                await self._reconnect(new_channel=new_channel)
            except Exception as exc:  # the owner decides what to do without a channel
                logger.warning("notifications channel lost for good: %s", _describe(exc))
                self._closed = True
                await self._drop_socket()
                self.on_lost(exc)
                return
            try:
                await self.on_reconnected()
            except Exception as exc:  # a failed catch-up must not stop the channel
                logger.warning("notifications: catching up after a reconnect failed: %s", exc)

    async def _read(self) -> None:
        socket = self._socket
        if socket is None:
            raise _Reconnect("no socket")
        while True:
            if self._expiring():
                raise _Reconnect("channel about to expire", new_channel=True)
            try:
                async with asyncio.timeout(self.settings.heartbeat_timeout_s):
                    message = await socket.recv()
            except TimeoutError:
                self.stats.missed_heartbeats += 1
                raise _Reconnect(
                    f"no heartbeat for {self.settings.heartbeat_timeout_s:g} s"
                ) from None
            self.stats.frames += 1
            frame = parse_frame(message)
            if frame is None:
                self.stats.garbled += 1
                logger.warning("notifications: skipped a garbled frame (%d bytes)", len(message))
                continue
            if frame.is_heartbeat:
                self.stats.heartbeats += 1
                continue
            if frame.is_closing:
                self.stats.closing_warnings += 1
                dying = self.clock() - self._connected_at < self.settings.min_socket_life_s
                raise _Reconnect("server announced socket_closing", new_channel=dying)
            conversation = frame.conversation()
            if conversation is not None:
                self.on_conversation(conversation)
            elif self.on_frame is not None:
                self.on_frame(frame)
            elif frame.topic.startswith(("v2.conversations.calls.", "v2.users.")):
                self.stats.garbled += 1
                logger.warning("notifications: skipped a %s frame without a call", frame.topic)

    async def _reconnect(self, *, new_channel: bool) -> None:
        await self._drop_socket()
        delay = self.settings.reconnect_initial_s
        last: BaseException | None = None
        new_channel = new_channel or self._expiring()
        for attempt in range(self.settings.reconnect_attempts):
            if attempt:
                await self.sleep(delay)
                delay = min(delay * 2, self.settings.reconnect_max_s)
            try:
                async with self._lock:
                    await self._connect(new_channel=new_channel)
            except NotFoundError as exc:
                last, new_channel = exc, True  # the channel is gone (expired, replaced)
            except (websockets.InvalidStatus, websockets.InvalidHandshake) as exc:
                last, new_channel = exc, True
            except (GcdialError, OSError, TimeoutError, websockets.WebSocketException) as exc:
                last = exc
                if isinstance(exc, ApiError) and exc.status in (400, 403):
                    new_channel = True
            else:
                self.stats.reconnects += 1
                return
            await self._drop_socket()
            logger.info("notifications reconnect attempt %d failed: %s", attempt + 1, last)
        raise ChannelUnavailableError(
            f"reconnecting failed {self.settings.reconnect_attempts} times", cause=last
        )


def _tls_context(uri: str, *, verify: bool) -> ssl.SSLContext | None:
    """The TLS context of a ``wss://`` socket: the default one, or one that checks nothing."""
    if not uri.startswith("wss:") or verify:
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."
