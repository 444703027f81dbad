"""Real-HTTP plumbing for the monitor's integration tests: a transport to the emulator, calls."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from gcdial.emulator import EmulatorServer
from gcdial.http import AsyncApiTransport
from gcdial.monitor.channel import ChannelSettings
from gcdial.monitor.polling import PollSettings

ALICE = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"

# At the emulator's speed 50, one simulated second is 20 ms: poll on that scale.
FAST_POLL = PollSettings(initial_s=0.02, factor=1.5, max_s=0.2)
FAST_CHANNEL = ChannelSettings(heartbeat_timeout_s=5.0, reconnect_initial_s=0.05)


@contextlib.asynccontextmanager
async def emulator_transport(emulator: EmulatorServer) -> AsyncIterator[AsyncApiTransport]:
    """gcdial's async transport to ``emulator``, with a client-credentials bearer token."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        token = await http.post(
            emulator.base_url + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(emulator.client_id, emulator.client_secret),
        )
        token.raise_for_status()
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield AsyncApiTransport(http, base_url=emulator.base_url)


def number(nn: int) -> str:
    """A dialable number whose last two digits pick the emulator's outcome."""
    return f"+1415555{nn:04d}"


async def place_call(transport: AsyncApiTransport, nn: int, *, agent: str = ALICE) -> str:
    """Create a call on behalf of ``agent`` to a number ending in ``nn``; its conversation id."""
    response = await transport.request(
        "POST",
        f"/api/v2/conversations/calls/user/{agent}",
        json={"phoneNumber": number(nn)},
        idempotent=False,
    )
    conversation_id: str = response.json()["id"]
    return conversation_id


def rest_counts(emulator: EmulatorServer) -> dict[str, int]:
    """Requests per route template since the last reset."""
    by_route: dict[str, Any] = emulator.request_counts()["byRoute"]
    return {route: int(n) for route, n in by_route.items()}


GET_CALL = "GET /api/v2/conversations/calls/{conversationId}"
PUT_SUBSCRIPTIONS = "PUT /api/v2/notifications/channels/{channelId}/subscriptions"
POST_CHANNEL = "POST /api/v2/notifications/channels"
