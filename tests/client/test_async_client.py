"""AsyncClient over real HTTP: concurrency shares one token and one budget; same rules as sync."""

from __future__ import annotations

import asyncio
import random

import pytest

from gcdial.client import AsyncClient
from gcdial.emulator import EmulatorServer
from gcdial.errors import AgentNotReadyError, CallOutcomeUnknownError

from .support import ALICE, ON_BEHALF_ROUTE, TOKEN_ROUTE, emu_settings, route_count
from .timefake import FakeTime


def _client(emulator: EmulatorServer, fake_time: FakeTime, **kwargs: object) -> AsyncClient:
    return AsyncClient(
        emu_settings(emulator),
        clock=fake_time.clock,
        sleep=fake_time.async_sleep,
        rng=random.Random(3),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_fifty_concurrent_calls_make_one_token_request(
    emulator: EmulatorServer, fake_time: FakeTime
) -> None:
    async with _client(emulator, fake_time) as client:
        created = await asyncio.gather(
            *(
                client.calls.create(ALICE, to=f"+1415555{n:04d}", check_agent=False)
                for n in range(100, 150)
            )
        )
    assert len({c.id for c in created}) == 50
    assert len(emulator.calls_created()) == 50
    assert route_count(emulator, TOKEN_ROUTE) == 1
    assert route_count(emulator, ON_BEHALF_ROUTE) == 50


async def test_async_create_get_hang_up(emulator: EmulatorServer, fake_time: FakeTime) -> None:
    async with _client(emulator, fake_time) as client:
        ready = await client.agents.check("alice@example.com")
        assert ready.presence == "AVAILABLE"
        created = await client.calls.create(
            "alice@example.com", to="+14155550100", caller_id="+14155550199"
        )
        conversation = await client.calls.get(created.id)
        assert conversation.agent_participant(ALICE) is not None
        await client.calls.hang_up(created.id)
        assert (await client.calls.get(created.id)).is_over
        prepared = await client.calls.build_create_request(ALICE, to="+14155550100")
        assert prepared.url.endswith(f"/calls/user/{ALICE}")
    (call,) = emulator.calls_created()
    assert call["body"] == {"phoneNumber": "+14155550100", "callerId": "+14155550199"}


async def test_async_agent_without_station(emulator: EmulatorServer, fake_time: FakeTime) -> None:
    async with _client(emulator, fake_time) as client:
        with pytest.raises(AgentNotReadyError) as caught:
            await client.calls.create("dave@example.com", to="+14155550100")
    assert caught.value.reason == "no_station"
    assert emulator.calls_created() == []


async def test_async_dropped_create_is_never_resent(
    emulator: EmulatorServer, fake_time: FakeTime
) -> None:
    emulator.add_fault(route="create_call", mode="drop_after_create", count=1)
    async with _client(emulator, fake_time) as client:
        with pytest.raises(CallOutcomeUnknownError):
            await client.calls.create(ALICE, to="+14155550100", check_agent=False)
    assert len(emulator.calls_created()) == 1
    assert route_count(emulator, ON_BEHALF_ROUTE) == 1


async def test_async_429_pauses_everyone_once(
    emulator: EmulatorServer, fake_time: FakeTime
) -> None:
    emulator.add_fault(route="create_call", mode="status", status=429, retry_after=4, count=1)
    async with _client(emulator, fake_time) as client:
        created = await asyncio.gather(
            *(client.calls.create(ALICE, to="+14155550100", check_agent=False) for _ in range(5))
        )
    assert len(created) == 5
    assert len(emulator.calls_created()) == 5
    assert route_count(emulator, ON_BEHALF_ROUTE) == 6
    assert client.budget.rate_limited_count == 1
    assert 4.0 in fake_time.sleeps
