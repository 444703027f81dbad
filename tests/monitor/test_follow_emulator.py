"""Following real calls on the emulator over real HTTP and WebSocket, in both modes."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from monitor_stories import expected_kind
from monitor_support import (
    ALICE,
    BOB,
    FAST_CHANNEL,
    FAST_POLL,
    GET_CALL,
    POST_CHANNEL,
    PUT_SUBSCRIPTIONS,
    emulator_transport,
    place_call,
    rest_counts,
)

from gcdial.emulator import EmulatorServer
from gcdial.errors import (
    CallWaitTimeoutError,
    ChannelUnavailableError,
    GcdialError,
    InputError,
    NotFoundError,
)
from gcdial.monitor.events import CallEvent, EventKind, Role
from gcdial.monitor.follow import CallMonitor, MonitorMode, follow, wait
from gcdial.monitor.outcome import OutcomeKind

# One number per row of design.md's NN table, both edges of the answered range.
NUMBERS = [0, 5, 49, 55, 65, 75, 85, 92, 97]


def monitor(transport: object, mode: MonitorMode = MonitorMode.AUTO) -> CallMonitor:
    return CallMonitor(
        transport,  # type: ignore[arg-type]
        mode=mode,
        channel_settings=FAST_CHANNEL,
        poll_settings=FAST_POLL,
    )


@pytest.mark.parametrize("mode", [MonitorMode.WEBSOCKET, MonitorMode.POLLING])
@pytest.mark.parametrize("nn", NUMBERS)
async def test_every_emulator_outcome(emulator: EmulatorServer, nn: int, mode: MonitorMode) -> None:
    async with emulator_transport(emulator) as transport, monitor(transport, mode) as mon:
        assert mon.mode is mode
        await mon.watch_agent(ALICE)
        conversation_id = await place_call(transport, nn)
        seen: list[CallEvent] = []
        outcome = await mon.wait(conversation_id, timeout_s=20, on_event=seen.append)
    assert outcome.kind.value == expected_kind(nn)
    assert outcome.ended
    assert outcome.conversation_id == conversation_id
    kinds = [e.kind for e in seen]
    assert kinds[-1] is EventKind.CALL_ENDED
    assert kinds.count(EventKind.CALL_ENDED) == 1
    if nn < 50:
        assert outcome.talk_seconds is not None
        # Server timestamps on the simulated clock: 10 + NN s of talk, give or take scheduling.
        assert outcome.talk_seconds == pytest.approx(10 + nn, abs=1.0)
        assert EventKind.CUSTOMER_CONNECTED in kinds
    else:
        assert outcome.talk_seconds is None
        assert EventKind.CUSTOMER_CONNECTED not in kinds
    if mode is MonitorMode.WEBSOCKET:
        # Subscribed before the call was placed: the story is complete from its first state.
        assert kinds[0] is EventKind.AGENT_ALERTING
        if nn < 90:
            assert EventKind.CUSTOMER_DIALING in kinds


async def test_customer_purpose_customer(make_emulator: object) -> None:
    emu = make_emulator(customer_purpose="customer")  # type: ignore[operator]
    async with emulator_transport(emu) as transport, monitor(transport) as mon:
        conversation_id = await place_call(transport, 3)
        outcome = await mon.wait(conversation_id, agent_id=ALICE, timeout_s=20)
    assert outcome.kind is OutcomeKind.ANSWERED
    assert outcome.decided_by is Role.CUSTOMER


async def test_watching_first_keeps_events_that_happen_before_follow(
    emulator: EmulatorServer,
) -> None:
    async with emulator_transport(emulator) as transport, monitor(transport) as mon:
        await mon.watch_agent(ALICE)
        early = await place_call(transport, 65)
        late = await place_call(transport, 66, agent=BOB)
        await asyncio.sleep(0.5)  # both calls are over (busy after 2+2 simulated s)
        watched = [e.kind async for e in mon.follow(early, timeout_s=10)]
        unwatched = [e.kind async for e in mon.follow(late, timeout_s=10)]
    assert watched[:3] == [
        EventKind.AGENT_ALERTING,
        EventKind.AGENT_CONNECTED,
        EventKind.CUSTOMER_DIALING,
    ]
    # Only the final GET was there for Bob's call: the early states are gone for good.
    assert EventKind.AGENT_ALERTING not in unwatched
    assert unwatched[-1] is EventKind.CALL_ENDED


async def test_a_follow_does_not_count_on_an_agent_topic_still_being_subscribed(
    emulator: EmulatorServer,
) -> None:
    """Another task is subscribing to alice's topic (its PUT is slow) when a follow of her call
    starts. That topic is not in force yet, so the follow cannot count on it: the call ends
    while the PUT is out, and its end frame never comes on her topic. Before the fix the
    follow waited for it until its timeout (a served call's agent stayed held for hours)."""
    async with emulator_transport(emulator) as transport, monitor(transport) as mon:
        await mon.watch_agent(BOB)  # the channel is open
        emulator.add_fault(route="notifications", mode="latency", seconds=1.5, count=1)
        subscribing = asyncio.create_task(mon.watch_agent(ALICE))
        await asyncio.sleep(0.1)  # alice's PUT is out
        conversation_id = await place_call(transport, 65)  # busy: over in about 0.1 s
        events = [e.kind async for e in mon.follow(conversation_id, timeout_s=8)]
        await subscribing
    assert events[-1] is EventKind.CALL_ENDED


async def test_one_channel_for_many_calls_and_agents(emulator: EmulatorServer) -> None:
    async with emulator_transport(emulator) as transport, monitor(transport) as mon:
        await mon.watch_agent(ALICE)
        await mon.watch_agent(BOB)
        plan = [(ALICE, 1), (ALICE, 55), (ALICE, 62), (BOB, 20), (BOB, 71), (BOB, 93)]
        ids = [await place_call(transport, nn, agent=agent) for agent, nn in plan]
        outcomes = await asyncio.gather(*(mon.wait(cid, timeout_s=20) for cid in ids))
        assert mon.channel is not None
        assert mon.channel.stats.channels_created == 1
    assert [o.kind.value for o in outcomes] == [expected_kind(nn) for _, nn in plan]
    counts = rest_counts(emulator)
    assert counts[POST_CHANNEL] == 1
    assert counts[PUT_SUBSCRIPTIONS] == 2  # one per agent, none per call
    assert counts[GET_CALL] == len(plan)  # one catch-up GET per call, no polling


async def test_watching_many_agents_takes_one_subscriptions_request(
    emulator: EmulatorServer,
) -> None:
    async with emulator_transport(emulator) as transport, monitor(transport) as mon:
        await mon.watch_agents([ALICE, BOB])
        ids = [await place_call(transport, 5, agent=agent) for agent in (ALICE, BOB)]
        outcomes = await asyncio.gather(*(mon.wait(cid, timeout_s=20) for cid in ids))
    assert [o.kind for o in outcomes] == [OutcomeKind.ANSWERED, OutcomeKind.ANSWERED]
    assert rest_counts(emulator)[PUT_SUBSCRIPTIONS] == 1


async def test_follow_without_agent_subscribes_to_the_conversation(
    emulator: EmulatorServer,
) -> None:
    async with emulator_transport(emulator) as transport, monitor(transport) as mon:
        conversation_id = await place_call(transport, 45)
        events = [e async for e in mon.follow(conversation_id, timeout_s=20)]
        assert mon.mode is MonitorMode.WEBSOCKET
    assert events[-1].kind is EventKind.CALL_ENDED
    counts = rest_counts(emulator)
    assert counts[GET_CALL] == 1
    assert counts[PUT_SUBSCRIPTIONS] == 1


async def test_unknown_conversation_is_a_clear_not_found(emulator: EmulatorServer) -> None:
    async with emulator_transport(emulator) as transport, monitor(transport) as mon:
        missing = str(uuid.uuid4())
        with pytest.raises(NotFoundError) as info:
            await mon.wait(missing, timeout_s=5)
        assert missing in str(info.value)
        assert "contextId" in str(info.value)
        with pytest.raises(NotFoundError):
            await mon.wait("not-a-conversation", timeout_s=5)
        with pytest.raises(InputError, match="conversation id"):
            await mon.wait("  ", timeout_s=5)
        # A refused topic does not poison the channel for the next call.
        conversation_id = await place_call(transport, 2)
        assert (await mon.wait(conversation_id, timeout_s=20)).kind is OutcomeKind.ANSWERED


@pytest.mark.parametrize("mode", [MonitorMode.WEBSOCKET, MonitorMode.POLLING])
async def test_a_call_that_does_not_end_in_time(
    emulator: EmulatorServer, mode: MonitorMode
) -> None:
    async with emulator_transport(emulator) as transport, monitor(transport, mode) as mon:
        conversation_id = await place_call(transport, 49)  # talks 59 simulated s: ~1.5 s real
        with pytest.raises(CallWaitTimeoutError) as info:
            await mon.wait(conversation_id, agent_id=ALICE, timeout_s=0.3)
    error = info.value
    assert error.conversation_id == conversation_id
    assert not error.outcome.ended
    assert error.outcome.kind is OutcomeKind.UNKNOWN
    assert f"gcdial watch {conversation_id}" in str(error)


async def test_module_level_follow_and_wait(emulator: EmulatorServer) -> None:
    async with emulator_transport(emulator) as transport:
        first = await place_call(transport, 77)
        kinds = [e.kind async for e in follow(transport, first, agent_id=ALICE, timeout_s=20)]
        second = await place_call(transport, 98)
        outcome = await wait(transport, second, timeout_s=20, mode="polling")
    assert kinds[-1] is EventKind.CALL_ENDED
    assert outcome.kind is OutcomeKind.AGENT_REJECTED
    assert outcome.disconnect_type == "client"


async def test_stopping_early_unsubscribes_cleanly(emulator: EmulatorServer) -> None:
    async with emulator_transport(emulator) as transport, monitor(transport) as mon:
        conversation_id = await place_call(transport, 30)
        stream = mon.follow(conversation_id, timeout_s=20)
        async with contextlib.aclosing(stream):
            async for event in stream:
                if event.kind is EventKind.CUSTOMER_DIALING:
                    break
        assert mon.channel is not None
        assert not mon.channel.topics
        # The same call can be followed again to its end.
        outcome = await mon.wait(conversation_id, timeout_s=20)
    assert outcome.kind is OutcomeKind.ANSWERED


async def test_forced_websocket_mode_says_why_it_cannot(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="notifications", mode="status", status=403, code="missing.permissions")
    async with emulator_transport(emulator) as transport:
        mon = monitor(transport, MonitorMode.WEBSOCKET)
        with pytest.raises(ChannelUnavailableError) as info:
            await mon.start()
        await mon.close()
    text = str(info.value)
    assert "403" in text
    assert "polling" in text


async def test_closing_the_monitor_releases_its_followers(emulator: EmulatorServer) -> None:
    async with emulator_transport(emulator) as transport:
        mon = monitor(transport)
        await mon.start()
        conversation_id = await place_call(transport, 49)
        waiting = asyncio.ensure_future(mon.wait(conversation_id, agent_id=ALICE, timeout_s=20))
        await asyncio.sleep(0.2)
        await mon.close()
        with pytest.raises(GcdialError, match="monitor was closed"):
            await waiting
