"""events_between / merge: transitions from snapshots, tolerant of duplicates and disorder."""

from __future__ import annotations

import datetime as dt
from typing import Any

from monitor_stories import agent, conv, customer, story, ts

from gcdial.monitor.events import (
    EventKind,
    Role,
    ended_by,
    events_between,
    is_over,
    merge,
    replay,
)


def kinds(events: list[Any]) -> list[str]:
    return [e.kind.value for e in events]


def test_answered_call_tells_its_story_in_order() -> None:
    _, events = replay(story(5))
    assert kinds(events) == [
        "agent_alerting",
        "agent_connected",
        "customer_dialing",
        "customer_connected",
        "participant_disconnected",
        "participant_disconnected",
        "call_ended",
    ]
    connected = events[3]
    assert connected.role is Role.CUSTOMER
    assert connected.at == dt.datetime(2026, 11, 25, 8, 49, 9, 123000, tzinfo=dt.UTC)
    hangup = events[4]
    assert (hangup.role, hangup.disconnect_type, hangup.ended_by) == (
        Role.CUSTOMER,
        "endpoint",
        "customer",
    )
    assert events[5].ended_by == "customer"  # the agent's leg ended by its peer
    assert events[-1].at == hangup.at


def test_duplicate_snapshots_add_nothing() -> None:
    snaps = story(5)
    doubled = [s for snap in snaps for s in (snap, snap)]
    assert kinds(replay(doubled)[1]) == kinds(replay(snaps)[1])


def test_stale_snapshot_does_not_move_a_participant_backwards() -> None:
    snaps = story(5)
    state, _ = replay(snaps[:3])
    assert events_between(state, snaps[1]) == []
    assert merge(state, snaps[1]) == merge(state, snaps[2])
    late_ringing = conv(agent("alerting"))
    assert events_between(state, late_ringing) == []


def test_a_late_follower_still_learns_the_customer_connected() -> None:
    events = events_between(None, story(5)[-1])
    assert kinds(events) == [
        "agent_connected",
        "customer_connected",
        "participant_disconnected",
        "participant_disconnected",
        "call_ended",
    ]


def test_participants_in_any_order_and_customer_purpose() -> None:
    snap = conv(customer("dialing", purpose="customer"), agent("connected"))
    events = events_between(None, snap)
    assert {(e.kind, e.role) for e in events} == {
        (EventKind.CUSTOMER_DIALING, Role.CUSTOMER),
        (EventKind.AGENT_CONNECTED, Role.AGENT),
    }


def test_unknown_states_and_enum_values_are_kept_as_strings() -> None:
    first = conv(agent("connected"), customer("warping"))
    second = conv(
        agent("disconnected", disconnectType="peer"),
        customer("disconnected", disconnectType="wormhole"),
    )
    state, events = replay([first, second])
    assert events[1].kind is EventKind.STATE_CHANGED
    assert events[1].state == "warping"
    gone = next(e for e in events if e.disconnect_type == "wormhole")
    assert (gone.role, gone.ended_by) == (Role.CUSTOMER, "system")
    assert is_over(state)


def test_held_and_resumed() -> None:
    snaps = [
        conv(agent("connected"), customer("connected")),
        conv(agent("connected", held=True), customer("connected")),
        conv(agent("connected", held=False), customer("connected")),
    ]
    assert kinds(replay(snaps)[1])[-2:] == ["held", "resumed"]


def test_missing_fields_are_not_cleared_by_a_later_snapshot() -> None:
    snaps = story(5)
    bare = conv(
        agent("connected"), {"id": "p-customer", "purpose": "external", "state": "connected"}
    )
    state, _ = replay([*snaps[:3], bare])
    assert state is not None
    cust = next(p for p in state["participants"] if p["id"] == "p-customer")
    assert cust["connectedTime"] == ts(6)


def test_garbage_is_tolerated() -> None:
    junk: Any
    for junk in [
        {},
        {"participants": None},
        {"participants": [None, 3, "x", {}]},
        {"id": 7, "participants": [{"state": 9, "purpose": None, "startTime": "not a time"}]},
    ]:
        events_between(None, junk)
        events_between(junk, junk)
        assert not is_over(junk) or junk.get("participants")


def test_call_ended_is_emitted_once() -> None:
    snaps = story(95)
    final = snaps[-1]
    terminated = conv(agent("terminated", disconnectType="client"))
    _, events = replay([*snaps, final, terminated])
    assert kinds(events).count("call_ended") == 1


def test_ended_by() -> None:
    assert ended_by(Role.AGENT, "client") == "agent"
    assert ended_by(Role.CUSTOMER, "client") == "agent"
    assert ended_by(Role.CUSTOMER, "endpoint") == "customer"
    assert ended_by(Role.AGENT, "peer") == "customer"
    assert ended_by(Role.CUSTOMER, "peer") == "agent"
    assert ended_by(Role.CUSTOMER, "transport.failure") == "system"
    assert ended_by(Role.OTHER, "peer") == "unknown"
    assert ended_by(Role.AGENT, None) == "unknown"
    assert ended_by(Role.CUSTOMER, "peer", failed=True) == "system"


def test_event_to_dict_is_json_ready() -> None:
    _, events = replay(story(65))
    busy = next(e for e in events if e.kind is EventKind.PARTICIPANT_DISCONNECTED)
    assert busy.to_dict() == {
        "event": "participant_disconnected",
        "conversationId": "c-1",
        "at": ts(4),
        "role": "customer",
        "participantId": "p-customer",
        "state": "disconnected",
        "disconnectType": "peer",
        "endedBy": "system",
        "errorInfo": {
            "code": "error.ininedgecontrol.remote.busy",
            "message": "error.ininedgecontrol.remote.busy happened",
        },
    }


def test_at_the_same_instant_the_cause_comes_before_the_effect() -> None:
    connected = conv(agent("connected"), customer("connected"))
    both_gone = conv(
        agent("disconnected", endTime=ts(30), disconnectType="peer"),
        customer("disconnected", endTime=ts(30), disconnectType="endpoint"),
    )
    events = events_between(connected, both_gone)
    assert [(e.kind.value, e.role) for e in events] == [
        ("participant_disconnected", Role.CUSTOMER),
        ("participant_disconnected", Role.AGENT),
        ("call_ended", None),
    ]
