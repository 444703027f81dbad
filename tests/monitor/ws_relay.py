"""A real WebSocket relay between the monitor and the emulator, to misbehave on purpose.

The emulator's channels are honest; the network is not. The relay forwards every frame of the
emulator's channel sockets and can add garbled frames, swallow frames (a silent gap: no events,
no heartbeats) or cut every connection. The monitor reaches it because ``RelayingTransport`` points
the ``connectUri`` of each new channel at the relay instead of the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import websockets
from websockets.asyncio.server import Server, ServerConnection

from gcdial.http import AsyncApiTransport
from gcdial.monitor.channel import CHANNELS_PATH


class Relay:
    """WebSocket proxy on 127.0.0.1:0 in front of ``upstream`` (the emulator's base URL)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.replace("http://", "ws://", 1)
        self.pending_garbage: list[str | bytes] = []
        self.swallow = False
        self.swallowed = 0
        self.forwarded = 0
        self.connections = 0
        self._clients: set[ServerConnection] = set()
        self._server: Server | None = None

    @property
    def base(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def __aenter__(self) -> Relay:
        self._server = await websockets.serve(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def rewrite(self, connect_uri: str) -> str:
        """The same channel path, through the relay."""
        path = connect_uri.split("/", 3)[3]
        return f"{self.base}/{path}"

    async def cut(self) -> None:
        """Drop every client connection without a warning frame."""
        for client in list(self._clients):
            await client.close(code=1011, reason="relay cut")

    async def _handle(self, client: ServerConnection) -> None:
        self.connections += 1
        self._clients.add(client)
        path = client.request.path if client.request else "/"
        try:
            async with websockets.connect(self.upstream + path) as upstream:
                pumps = [
                    asyncio.ensure_future(self._down(upstream, client)),
                    asyncio.ensure_future(self._up(client, upstream)),
                ]
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
                for pump in pumps:
                    pump.cancel()
                for pump in pumps:
                    with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                        await pump
        except (OSError, websockets.WebSocketException):
            pass
        finally:
            self._clients.discard(client)

    async def _down(self, upstream: Any, client: ServerConnection) -> None:
        async for message in upstream:
            if self.swallow:
                self.swallowed += 1
                continue
            while self.pending_garbage:
                await client.send(self.pending_garbage.pop(0))
            await client.send(message)
            self.forwarded += 1

    async def _up(self, client: ServerConnection, upstream: Any) -> None:
        async for message in client:
            await upstream.send(message)


class RelayingTransport:
    """gcdial's transport, with each new channel's ``connectUri`` pointed at a relay (or a hole)."""

    def __init__(self, inner: AsyncApiTransport, rewrite: Any) -> None:
        self.inner = inner
        self.rewrite = rewrite

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        idempotent: bool,
    ) -> httpx.Response:
        response = await self.inner.request(
            method, path, json=json, params=params, idempotent=idempotent
        )
        if method == "POST" and path == CHANNELS_PATH:
            body = response.json()
            body["connectUri"] = self.rewrite(body["connectUri"])
            return httpx.Response(response.status_code, json=body, request=response.request)
        return response
