"""Sockets that drop, go silent, expire or send garbage; refused channels: no outcome is lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from monitor_support import (
    ALICE,
    FAST_CHANNEL,
    FAST_POLL,
    GET_CALL,
    POST_CHANNEL,
    emulator_transport,
    place_call,
    rest_counts,
)
from ws_relay import Relay, RelayingTransport

from gcdial.emulator import EmulatorServer
from gcdial.http import AsyncApiTransport
from gcdial.monitor.channel import ChannelSettings
from gcdial.monitor.events import CallEvent, EventKind
from gcdial.monitor.follow import CallMonitor, MonitorMode
from gcdial.monitor.outcome import Outcome, OutcomeKind


def monitor(transport: object, settings: ChannelSettings = FAST_CHANNEL) -> CallMonitor:
    return CallMonitor(
        transport,  # type: ignore[arg-type]
        channel_settings=settings,
        poll_settings=FAST_POLL,
    )


@contextlib.asynccontextmanager
async def relayed(emulator: EmulatorServer) -> AsyncIterator[tuple[AsyncApiTransport, Relay]]:
    async with emulator_transport(emulator) as transport, Relay(emulator.base_url) as relay:
        yield RelayingTransport(transport, relay.rewrite), relay  # type: ignore[misc]


async def follow_until(
    mon: CallMonitor, conversation_id: str, kind: EventKind, action: object
) -> tuple[list[CallEvent], Outcome]:
    """Follow the call; run ``action`` (a coroutine function) once ``kind`` has been seen."""
    seen: list[CallEvent] = []

    def on_event(event: CallEvent) -> None:
        seen.append(event)
        if event.kind is kind:
            fired.set()

    fired = asyncio.Event()
    waiting = asyncio.ensure_future(mon.wait(conversation_id, timeout_s=20, on_event=on_event))
    firing = asyncio.ensure_future(fired.wait())
    await asyncio.wait([waiting, firing], timeout=20, return_when=asyncio.FIRST_COMPLETED)
    firing.cancel()
    assert fired.is_set(), f"never saw {kind}; saw {[e.kind for e in seen]}"
    assert not waiting.done(), "the call ended before the action could run"
    await action()  # type: ignore[operator]
    return seen, await waiting


def assert_complete_answered(events: list[CallEvent], outcome: Outcome, talk: float) -> None:
    kinds = [e.kind for e in events]
    assert outcome.kind is OutcomeKind.ANSWERED
    assert outcome.talk_seconds == pytest.approx(talk, abs=1.0)
    assert kinds.count(EventKind.CUSTOMER_CONNECTED) == 1
    assert kinds.count(EventKind.PARTICIPANT_DISCONNECTED) == 2
    assert kinds.count(EventKind.CALL_ENDED) == 1
    assert kinds[-1] is EventKind.CALL_ENDED


async def call_over(emulator: EmulatorServer, conversation_id: str) -> None:
    for _ in range(200):
        calls = await asyncio.to_thread(emulator.calls_created)
        if any(c["id"] == conversation_id and c["state"] == "disconnected" for c in calls):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the emulator never ended the call")


@pytest.mark.parametrize("warn", [True, False])
async def test_reconnects_after_the_emulator_closes_the_socket(
    emulator: EmulatorServer, warn: bool
) -> None:
    async with emulator_transport(emulator) as transport, monitor(transport) as mon:
        await mon.watch_agent(ALICE)
        conversation_id = await place_call(transport, 40)  # talks 50 simulated s (~1 s real)

        async def close_sockets() -> None:
            assert await asyncio.to_thread(emulator.close_websockets, warn) == 1

        events, outcome = await follow_until(
            mon, conversation_id, EventKind.CUSTOMER_CONNECTED, close_sockets
        )
        assert mon.channel is not None
        stats = mon.channel.stats
        assert mon.mode is MonitorMode.WEBSOCKET
    assert_complete_answered(events, outcome, 50)
    assert stats.reconnects == 1
    assert stats.closing_warnings == (1 if warn else 0)
    counts = rest_counts(emulator)
    assert counts[GET_CALL] == 2  # the first catch-up and one after the reconnect


async def test_frames_lost_in_a_gap_are_recovered_by_the_catch_up_get(
    emulator: EmulatorServer,
) -> None:
    async with relayed(emulator) as (transport, relay), monitor(transport) as mon:
        await mon.watch_agent(ALICE)
        conversation_id = await place_call(transport, 10)  # talks 20 simulated s

        async def black_out_until_the_end() -> None:
            relay.swallow = True
            await call_over(emulator, conversation_id)
            relay.swallow = False
            await relay.cut()

        events, outcome = await follow_until(
            mon, conversation_id, EventKind.CUSTOMER_CONNECTED, black_out_until_the_end
        )
    assert relay.swallowed >= 1  # the hang-up frame really was lost on the wire
    assert_complete_answered(events, outcome, 20)


async def test_frames_lost_without_a_drop_are_recovered_by_reading_the_silent_call(
    emulator: EmulatorServer,
) -> None:
    """The hang-up's frames are lost while the socket stays up and nothing reconnects (the
    heartbeats after the gap arrive): no catch-up GET comes, so the follower reads the call
    once it has been silent for ``silent_recheck_s``. Before, it waited until its timeout."""
    settings = ChannelSettings(
        heartbeat_timeout_s=30.0, reconnect_initial_s=0.05, silent_recheck_s=0.5
    )
    async with relayed(emulator) as (transport, relay), monitor(transport, settings) as mon:
        await mon.watch_agent(ALICE)
        conversation_id = await place_call(transport, 10)  # talks 20 simulated s

        async def lose_the_end() -> None:
            relay.swallow = True
            await call_over(emulator, conversation_id)
            relay.swallow = False

        events, outcome = await follow_until(
            mon, conversation_id, EventKind.CUSTOMER_CONNECTED, lose_the_end
        )
        assert mon.channel is not None
        reconnects = mon.channel.stats.reconnects
    assert relay.swallowed >= 1  # the hang-up frame really was lost on the wire
    assert reconnects == 0
    assert_complete_answered(events, outcome, 20)


async def test_missed_heartbeats_mean_reconnect(emulator: EmulatorServer) -> None:
    settings = ChannelSettings(heartbeat_timeout_s=0.3, reconnect_initial_s=0.05)
    async with relayed(emulator) as (transport, relay), monitor(transport, settings) as mon:
        relay.swallow = True  # a socket that stays open but says nothing, heartbeats included
        conversation_id = await place_call(transport, 5)  # talks 15 simulated s (~0.3 s real)
        outcome = await mon.wait(conversation_id, agent_id=ALICE, timeout_s=20)
        assert mon.channel is not None
        stats = mon.channel.stats
    assert outcome.kind is OutcomeKind.ANSWERED
    assert stats.missed_heartbeats >= 1
    assert stats.reconnects >= 1
    assert relay.connections >= 2


async def test_garbled_frames_are_skipped(emulator: EmulatorServer) -> None:
    garbage: list[str | bytes] = [
        b"\x00\xff\xfe",
        "not json at all",
        "[1, 2, 3]",
        '{"topicName": 5, "eventBody": {}}',
        '{"topicName": "v2.users.x.conversations.calls", "eventBody": "a string"}',
        '{"topicName": "v2.users.x.conversations.calls", "eventBody": {"no": "id"}}',
    ]
    async with relayed(emulator) as (transport, relay), monitor(transport) as mon:
        relay.pending_garbage.extend(garbage)
        await mon.watch_agent(ALICE)
        conversation_id = await place_call(transport, 64)
        outcome = await mon.wait(conversation_id, timeout_s=20)
        assert mon.channel is not None
        stats = mon.channel.stats
    assert outcome.kind is OutcomeKind.BUSY
    assert stats.garbled == len(garbage)
    assert stats.reconnects == 0


async def test_channel_expiry_is_survived(make_emulator: object) -> None:
    # Channels live 20 simulated s (0.4 s real) and warn 5 s ahead: several expire mid-call.
    emu = make_emulator(channel_lifetime_s=20, socket_closing_lead_s=5)  # type: ignore[operator]
    settings = ChannelSettings(
        heartbeat_timeout_s=5, reconnect_initial_s=0.05, min_socket_life_s=0.05
    )
    async with emulator_transport(emu) as transport, monitor(transport, settings) as mon:
        await mon.watch_agent(ALICE)
        conversation_id = await place_call(transport, 49)  # 2 + 4 + 59 simulated s
        seen: list[CallEvent] = []
        outcome = await mon.wait(conversation_id, timeout_s=20, on_event=seen.append)
        assert mon.channel is not None
        stats = mon.channel.stats
        assert mon.mode is MonitorMode.WEBSOCKET
    assert_complete_answered(seen, outcome, 59)
    assert stats.channels_created >= 2
    assert stats.closing_warnings >= 1


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"status": 403, "code": "missing.permissions"}, "403"),
        ({"status": 429, "retry_after": 0}, "429"),
    ],
)
async def test_polling_when_the_channel_is_refused(
    emulator: EmulatorServer, fault: dict[str, object], reason: str
) -> None:
    emulator.add_fault(route="notifications", mode="status", **fault)
    async with emulator_transport(emulator) as transport, monitor(transport) as mon:
        assert mon.mode is MonitorMode.POLLING
        assert mon.fallback_reason is not None
        assert reason in mon.fallback_reason
        conversation_id = await place_call(transport, 25)
        outcome = await mon.wait(conversation_id, agent_id=ALICE, timeout_s=20)
    assert outcome.kind is OutcomeKind.ANSWERED
    assert outcome.talk_seconds == pytest.approx(35, abs=1.0)
    assert rest_counts(emulator)[GET_CALL] > 2


async def test_polling_when_the_channel_limit_is_reached(make_emulator: object) -> None:
    emu = make_emulator(channel_limit=1, channel_limit_mode="reject")  # type: ignore[operator]
    async with (
        emulator_transport(emu) as transport,
        monitor(transport) as first,
        monitor(transport) as second,
    ):
        assert first.mode is MonitorMode.WEBSOCKET
        assert second.mode is MonitorMode.POLLING
        assert second.fallback_reason is not None
        assert "channel.limit.exceeded" in second.fallback_reason
        conversation_id = await place_call(transport, 58)
        outcome = await second.wait(conversation_id, timeout_s=20)
    assert outcome.kind is OutcomeKind.NO_ANSWER


async def test_polling_when_the_websocket_cannot_connect(emulator: EmulatorServer) -> None:
    async with emulator_transport(emulator) as inner:
        transport = RelayingTransport(inner, lambda uri: "ws://127.0.0.1:1/nowhere")
        async with monitor(transport) as mon:
            assert mon.mode is MonitorMode.POLLING
            conversation_id = await place_call(inner, 81)
            outcome = await mon.wait(conversation_id, timeout_s=20)
    assert outcome.kind is OutcomeKind.UNREACHABLE
    assert outcome.error is not None
    assert outcome.error.code == "error.ininedgecontrol.network.failure"


async def test_falls_back_to_polling_when_the_channel_is_lost_mid_call(
    emulator: EmulatorServer,
) -> None:
    async with emulator_transport(emulator) as transport, monitor(transport) as mon:
        await mon.watch_agent(ALICE)
        conversation_id = await place_call(transport, 30)  # talks 40 simulated s

        async def lose_the_channel() -> None:
            await asyncio.to_thread(
                emulator.add_fault, route="notifications", mode="status", status=403
            )
            await asyncio.to_thread(emulator.close_websockets, False)

        events, outcome = await follow_until(
            mon, conversation_id, EventKind.CUSTOMER_CONNECTED, lose_the_channel
        )
        assert mon.mode is MonitorMode.POLLING
        assert mon.channel is not None
        assert not mon.channel.alive
    assert_complete_answered(events, outcome, 40)
    assert rest_counts(emulator)[POST_CHANNEL] >= 2  # it tried a new channel before giving up
