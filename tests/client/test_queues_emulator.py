"""Queues and a queue's members (``gcdial.queues``) over real HTTP to the emulator."""

from __future__ import annotations

import random

import pytest

from gcdial.client import AsyncClient
from gcdial.emulator import EmulatorServer
from gcdial.errors import NotFoundError
from gcdial.queues import (
    Group,
    Queue,
    QueueMember,
    find_group,
    find_queue,
    list_group_members,
    list_groups,
    list_queue_members,
    list_queues,
)

from .support import emu_settings, route_count
from .timefake import FakeTime

SALES = "9ee00001-0000-4000-8000-000000000001"
MEMBERS_ROUTE = "GET /api/v2/routing/queues/{queueId}/members"


def _client(emulator: EmulatorServer, fake_time: FakeTime) -> AsyncClient:
    return AsyncClient(
        emu_settings(emulator),
        clock=fake_time.clock,
        sleep=fake_time.async_sleep,
        rng=random.Random(3),
    )


async def test_queues_are_listed_and_found_by_id_or_name(
    emulator: EmulatorServer, fake_time: FakeTime
) -> None:
    async with _client(emulator, fake_time) as client:
        queues = await list_queues(client.transport)
        assert [q.name for q in queues] == ["Sales", "Support"]
        assert await find_queue(client.transport, SALES.upper()) == Queue(SALES, "Sales")
        assert await find_queue(client.transport, "sales") == Queue(SALES, "Sales")
        assert await find_queue(client.transport, "Nobody") is None
        assert await find_queue(client.transport, "9ee00009-0000-4000-8000-000000000009") is None


async def test_members_are_read_page_after_page_to_the_end(
    emulator: EmulatorServer, fake_time: FakeTime
) -> None:
    async with _client(emulator, fake_time) as client:
        members = await list_queue_members(client.transport, SALES, page_size=3)
        assert members[0] == QueueMember(
            "11111111-1111-4111-8111-111111111111", "Alice Anders", "alice@example.com"
        )
        assert [m.email for m in members] == [
            "alice@example.com",
            "bob@example.com",
            "carol@example.com",
            "dave@example.com",
        ]
        assert route_count(emulator, MEMBERS_ROUTE) == 2
        with pytest.raises(NotFoundError):
            await list_queue_members(client.transport, "9ee00009-0000-4000-8000-000000000009")
        with pytest.raises(NotFoundError):
            await list_queue_members(client.transport, "../users")
    assert route_count(emulator, MEMBERS_ROUTE) == 3


async def test_groups_and_their_members(emulator: EmulatorServer, fake_time: FakeTime) -> None:
    team = Group("6a0e0001-0000-4000-8000-000000000001", "Outbound team")
    async with _client(emulator, fake_time) as client:
        assert await list_groups(client.transport) == [team]
        assert await find_group(client.transport, "outbound TEAM") == team
        assert await find_group(client.transport, team.id) == team
        assert await find_group(client.transport, "Nobody") is None
        members = await list_group_members(client.transport, team.id, page_size=2)
        assert [m.email for m in members] == [
            "alice@example.com",
            "bob@example.com",
            "dave@example.com",
        ]
        with pytest.raises(NotFoundError):
            await list_group_members(client.transport, "9ee00001-0000-4000-8000-000000000001")
