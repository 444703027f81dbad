"""classify(): every emulator outcome, any order, duplicates, unknown values, never raising."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from monitor_stories import agent, conv, customer, expected_kind, story, ts

from gcdial.monitor.events import Role, replay
from gcdial.monitor.outcome import (
    DEFAULT_RULES,
    OutcomeKind,
    OutcomeRules,
    classify,
)

ALL_NN = [0, 7, 49, 50, 59, 60, 65, 70, 79, 80, 89, 90, 94, 95, 99]


@pytest.mark.parametrize("nn", ALL_NN)
@pytest.mark.parametrize("purpose", ["external", "customer"])
def test_every_emulator_outcome_from_events_and_from_the_final_snapshot(
    nn: int, purpose: str
) -> None:
    snaps = story(nn, purpose=purpose)
    _, events = replay(snaps)
    by_events = classify(events)
    by_snapshot = classify(snaps[-1])
    assert by_events.kind.value == expected_kind(nn)
    assert by_snapshot.kind == by_events.kind
    assert by_events.ended
    assert by_events.conversation_id == "c-1"
    if nn < 50:
        assert by_events.talk_seconds == 10 + nn
        assert by_snapshot.talk_seconds == 10 + nn
    else:
        assert by_events.talk_seconds is None


def test_busy_carries_the_error_info() -> None:
    outcome = classify(story(61)[-1])
    assert outcome.kind is OutcomeKind.BUSY
    assert outcome.error is not None
    assert outcome.error.code == "error.ininedgecontrol.remote.busy"
    assert outcome.decided_by is Role.CUSTOMER
    assert outcome.disconnect_type == "peer"
    # Words for people in the reason; the code stays in the error, for the details.
    assert outcome.reason == "the customer never answered: the line was busy"
    assert "ininedgecontrol" not in outcome.reason
    assert outcome.to_dict()["errorInfo"]["code"] == "error.ininedgecontrol.remote.busy"


@pytest.mark.parametrize("nn", ALL_NN)
@pytest.mark.parametrize("seed", range(5))
def test_shuffled_and_duplicated_snapshots_give_the_same_outcome(nn: int, seed: int) -> None:
    snaps = story(nn)
    rng = random.Random(seed * 100 + nn)
    noisy = snaps + rng.choices(snaps, k=4)
    rng.shuffle(noisy)
    final, events = replay(noisy)
    assert classify(final).kind.value == expected_kind(nn)
    assert classify(events).kind.value == expected_kind(nn)
    assert classify(final).kind.value == expected_kind(nn)


def test_call_not_over_is_unknown() -> None:
    outcome = classify(story(5)[2])
    assert outcome.kind is OutcomeKind.UNKNOWN
    assert not outcome.ended
    assert "not ended" in outcome.reason


def test_nothing_at_all_is_unknown() -> None:
    junk: object
    for junk in [[], {}, None, 42, "call", {"participants": "x"}]:
        assert classify(junk).kind is OutcomeKind.UNKNOWN


def test_customer_answered_without_agent_is_abandoned() -> None:
    snap = conv(
        agent("disconnected", disconnectType="timeout"),
        customer("disconnected", connectedTime=ts(3), endTime=ts(5), disconnectType="endpoint"),
    )
    assert classify(snap).kind is OutcomeKind.ABANDONED


def test_our_side_hanging_up_while_ringing_is_abandoned() -> None:
    snap = conv(
        agent("disconnected", connectedTime=ts(2), endTime=ts(5), disconnectType="client"),
        customer("disconnected", endTime=ts(5), disconnectType="peer"),
    )
    assert classify(snap).kind is OutcomeKind.ABANDONED


def test_talk_time_ends_with_the_first_leg_to_leave() -> None:
    snap = conv(
        agent("disconnected", connectedTime=ts(2), endTime=ts(20), disconnectType="client"),
        customer("disconnected", connectedTime=ts(6), endTime=ts(21), disconnectType="peer"),
    )
    outcome = classify(snap)
    assert outcome.kind is OutcomeKind.ANSWERED
    assert outcome.talk_seconds == 14


def test_unknown_disconnect_type_falls_back_to_the_default() -> None:
    snap = conv(
        agent("disconnected", connectedTime=ts(2), disconnectType="peer"),
        customer("disconnected", disconnectType="quantum.decoherence"),
    )
    assert classify(snap).kind is OutcomeKind.FAILED
    custom = DEFAULT_RULES.with_overrides({"customerDefault": "unknown"})
    assert classify(snap, rules=custom).kind is OutcomeKind.UNKNOWN


def test_missing_disconnect_fields() -> None:
    snap = conv(agent("disconnected"), customer("disconnected"))
    outcome = classify(snap)
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.disconnect_type is None


def test_rules_are_data_a_user_can_override() -> None:
    snap = conv(
        agent("disconnected", connectedTime=ts(2), disconnectType="peer"),
        customer(
            "disconnected",
            disconnectType="error",
            errorInfo={"code": "error.ininedgecontrol.remote.declined", "message": "no"},
        ),
    )
    assert classify(snap).kind is OutcomeKind.FAILED
    rules = DEFAULT_RULES.with_overrides({"errorCodes": {"remote.declined": "busy"}})
    assert classify(snap, rules=rules).kind is OutcomeKind.BUSY
    assert rules.kind_for_code("ERROR.ininedgecontrol.REMOTE.DECLINED") is OutcomeKind.BUSY
    assert rules.kind_for_code("xremote.declined") is None
    assert DEFAULT_RULES.kind_for_code("error.ininedgecontrol.remote.declined") is None


def test_longest_matching_code_wins() -> None:
    rules = OutcomeRules(error_codes={"busy": OutcomeKind.BUSY, "remote.busy": OutcomeKind.FAILED})
    assert rules.kind_for_code("error.remote.busy") is OutcomeKind.FAILED
    assert rules.kind_for_code("error.line.busy") is OutcomeKind.BUSY


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"errorCodes": {"x": "ringing"}}, "errorCodes.x = 'ringing' is not an outcome"),
        ({"errorCodes": ["x"]}, "errorCodes must be an object"),
        ({"colour": {}}, "unknown key 'colour'"),
        ({"agentDefault": "maybe"}, "agentDefault = 'maybe'"),
    ],
)
def test_bad_overrides_say_what_and_how(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="outcome rules") as info:
        DEFAULT_RULES.with_overrides(overrides)
    assert message in str(info.value)


def test_outcome_to_dict() -> None:
    out = classify(story(20)[-1]).to_dict()
    assert out["event"] == "outcome"
    assert out["outcome"] == "answered"
    assert out["talkSeconds"] == 30
    assert out["customerConnectedAt"] == ts(6)
    assert out["endedAt"] == ts(36)


STATES = st.sampled_from(
    [
        "alerting",
        "dialing",
        "contacting",
        "offering",
        "connected",
        "disconnected",
        "terminated",
        "parked",
        "none",
        "SomethingNew",
        "",
    ]
)
OPTIONAL_TEXT = st.none() | st.sampled_from(
    ["endpoint", "client", "peer", "timeout", "error", "transport.failure", "x.y", ""]
)
TIMES = st.none() | st.integers(min_value=0, max_value=100).map(ts) | st.just("garbage")


@st.composite
def participants(draw: st.DrawFn) -> dict[str, Any]:
    part: dict[str, Any] = {
        "id": draw(st.sampled_from(["p1", "p2", "p3"])),
        "purpose": draw(st.sampled_from(["agent", "user", "external", "customer", "acd", "x"])),
        "state": draw(STATES),
    }
    for name in ("connectedTime", "endTime", "startTime"):
        value = draw(TIMES)
        if value is not None:
            part[name] = value
    dtype = draw(OPTIONAL_TEXT)
    if dtype is not None:
        part["disconnectType"] = dtype
    if draw(st.booleans()):
        part["errorInfo"] = draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries({"code": OPTIONAL_TEXT, "message": OPTIONAL_TEXT}),
                st.text(max_size=3),
            )
        )
    if draw(st.booleans()):
        part["held"] = draw(st.booleans())
    return part


SNAPSHOTS = st.builds(
    lambda ps, cid: {"id": cid, "participants": ps},
    st.lists(participants(), max_size=4),
    st.sampled_from(["c-1", None]),
) | st.sampled_from([{}, {"participants": None}, {"participants": [1, None]}])


@settings(max_examples=300, deadline=None)
@given(st.lists(SNAPSHOTS, max_size=8))
def test_any_sequence_never_raises(snaps: list[dict[str, Any]]) -> None:
    final, events = replay(snaps)
    outcome = classify(events)
    assert isinstance(outcome.kind, OutcomeKind)
    if final is not None:
        assert isinstance(classify(final).kind, OutcomeKind)
    for event in events:
        event.to_dict()
    outcome.to_dict()


@settings(max_examples=200, deadline=None)
@given(
    nn=st.sampled_from(ALL_NN),
    order=st.randoms(use_true_random=False),
    extra=st.lists(st.integers(min_value=0, max_value=10), max_size=5),
)
def test_any_arrival_order_of_a_real_story_gives_its_outcome(
    nn: int, order: random.Random, extra: list[int]
) -> None:
    snaps = story(nn)
    noisy = snaps + [snaps[i % len(snaps)] for i in extra]
    order.shuffle(noisy)
    final, events = replay(noisy)
    assert classify(final).kind.value == expected_kind(nn)
    assert classify(events).kind.value == expected_kind(nn)
    assert [e.kind.value for e in events].count("call_ended") == 1
