"""``client.calls.wait`` / ``follow``: the client's own way to follow a call to its outcome."""

from __future__ import annotations

import asyncio

import pytest

from gcdial.client import AsyncClient, Client
from gcdial.emulator import EmulatorServer
from gcdial.monitor import CallMonitor, EventKind, OutcomeKind

from .support import ALICE, emu_settings


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        ("+14155550105", OutcomeKind.ANSWERED),
        ("+14155550155", OutcomeKind.NO_ANSWER),
        ("+14155550165", OutcomeKind.BUSY),
        ("+14155550192", OutcomeKind.AGENT_NO_ANSWER),
    ],
)
def test_blocking_wait_returns_the_outcome(
    emulator: EmulatorServer, number: str, kind: OutcomeKind
) -> None:
    emulator.set_speed(50)  # faster, and a loaded machine blurs the talk time's second
    with Client(emu_settings(emulator)) as client:
        created = client.calls.create(ALICE, to=number)
        seen: list[str] = []
        outcome = client.calls.wait(
            created.id, agent_id=ALICE, timeout_s=30, on_event=lambda e: seen.append(e.kind)
        )
    assert outcome.kind == kind
    assert EventKind.CALL_ENDED in seen
    if kind == OutcomeKind.ANSWERED:
        assert outcome.talk_seconds == pytest.approx(15, abs=1)


async def test_async_follow_sees_every_transition_when_subscribed_first(
    emulator: EmulatorServer,
) -> None:
    emulator.set_speed(200)
    async with (
        AsyncClient(emu_settings(emulator)) as client,
        CallMonitor(client.transport) as monitor,
    ):
        await monitor.watch_agent(ALICE)
        created = await client.calls.create(ALICE, to="+14155550100", check_agent=False)
        kinds = [
            event.kind
            async for event in client.calls.follow(created.id, monitor=monitor, timeout_s=30)
        ]
        outcome = await client.calls.wait(created.id, monitor=monitor, timeout_s=5)
    assert kinds[0] == EventKind.AGENT_ALERTING
    assert EventKind.CUSTOMER_CONNECTED in kinds
    assert kinds[-1] == EventKind.CALL_ENDED
    assert outcome.kind == OutcomeKind.ANSWERED


def test_blocking_wait_refuses_inside_a_running_loop(emulator: EmulatorServer) -> None:
    async def inside() -> None:
        with Client(emu_settings(emulator)) as client:
            created = client.calls.create(ALICE, to="+14155550100", check_agent=False)
            with pytest.raises(RuntimeError, match=r"AsyncClient\.calls\.wait"):
                client.calls.wait(created.id, timeout_s=5)

    asyncio.run(inside())
