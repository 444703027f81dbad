"""The wrap-up as data: read from the agent's participant or from conversation details, turned
into a ``wrapup`` event once final, carried by the outcome, and expected only where one comes."""

from __future__ import annotations

from typing import Any

import pytest
from monitor_stories import T0, agent, conv, customer, story, ts

from gcdial.monitor.events import (
    EventKind,
    agent_wrapup,
    events_between,
    merge,
    replay,
    wrapup_expected,
)
from gcdial.monitor.outcome import classify
from gcdial.monitor.wrapup import Wrapup, WrapupWait, details_body, details_wrapup

WRAPUP = {
    "code": "wc-sale",
    "name": "Sale",
    "notes": "call back at 15:00",
    "tags": ["vip"],
    "durationSeconds": 12,
    "endTime": ts(60),
    "provisional": False,
}


def ended(**agent_extra: Any) -> dict[str, Any]:
    """The answered call of ``story(10)``'s last frame, with extras on the agent's leg."""
    last = story(10)[-1]
    parts = [dict(p) for p in last["participants"]]
    parts[0].update(agent_extra)
    return {**last, "participants": parts}


def test_a_wrapup_frame_after_the_end_is_one_wrapup_event_and_lands_in_the_outcome() -> None:
    snaps = [*story(10), ended(wrapup=WRAPUP, endAcwTime=ts(60))]
    state, events = replay(snaps)
    kinds = [e.kind for e in events]
    assert kinds[-2:] == [EventKind.CALL_ENDED, EventKind.WRAPUP]
    assert kinds.count(EventKind.WRAPUP) == 1
    wrapup = events[-1].wrapup
    assert wrapup == Wrapup(
        code="wc-sale",
        name="Sale",
        notes="call back at 15:00",
        tags=("vip",),
        duration_s=12.0,
        at=events[-1].at,
    )
    assert events[-1].to_dict()["wrapup"] == {
        "code": "wc-sale",
        "name": "Sale",
        "notes": "call back at 15:00",
        "at": ts(60),
        "source": "live",
    }
    for outcome in (classify(events), classify(state)):
        assert outcome.kind.value == "answered"
        assert outcome.wrapup is not None
        assert outcome.wrapup.name == "Sale"
        assert outcome.to_dict()["wrapup"]["code"] == "wc-sale"


def test_a_repeated_or_stale_frame_keeps_the_wrapup_and_adds_no_event() -> None:
    state = merge(None, ended(wrapup=WRAPUP))
    assert events_between(state, ended(wrapup=WRAPUP)) == []
    # A later frame without the field has not cleared it (missing is not cleared).
    assert agent_wrapup(merge(state, ended())) is not None


def test_a_provisional_code_given_during_the_call_is_not_the_wrapup() -> None:
    during = conv(
        agent("connected", connectedTime=ts(2), wrapup={**WRAPUP, "provisional": True}),
        customer("connected", connectedTime=ts(6)),
    )
    _, events = replay([during])
    assert EventKind.WRAPUP not in [e.kind for e in events]
    assert agent_wrapup(during) is None


@pytest.mark.parametrize(
    ("snapshot", "acd", "non_acd", "expected"),
    [
        (ended(), True, False, True),  # a queue call the agent answered
        (ended(), False, False, False),  # no queue: nothing comes (UNCONFIRMED: a setting)
        (ended(), False, True, True),  # ... unless the setting says non-ACD calls have one
        (ended(wrapupRequired=True), False, False, True),  # Genesys says so
        (ended(queueId="q-1"), False, False, True),  # the agent's leg was for a queue
        (ended(wrapup=WRAPUP), False, False, True),  # already here
        (story(95)[-1], True, False, False),  # the agent never answered: no after-call work
    ],
)
def test_a_wrapup_is_expected_only_where_one_can_come(
    snapshot: dict[str, Any], acd: bool, non_acd: bool, expected: bool
) -> None:
    assert wrapup_expected(snapshot, acd=acd, non_acd=non_acd) is expected


def test_conversation_details_give_the_code_and_the_note_and_the_name_comes_from_the_codes() -> (
    None
):
    details = {
        "conversationId": "c-1",
        "participants": [
            {"purpose": "customer", "sessions": [{"segments": [{"segmentType": "interact"}]}]},
            {
                "purpose": "agent",
                "userId": "u-1",
                "sessions": [
                    {
                        "segments": [
                            {"segmentType": "interact", "segmentEnd": ts(30)},
                            {
                                "segmentType": "wrapup",
                                "wrapUpCode": "wc-dnc",
                                "wrapUpNote": "asked not to be called",
                                "segmentEnd": ts(45),
                            },
                        ]
                    }
                ],
            },
        ],
    }
    found = details_wrapup(details)
    assert found is not None
    assert (found.code, found.name, found.notes, found.source) == (
        "wc-dnc",
        None,
        "asked not to be called",
        "details",
    )
    assert found.named({"wc-dnc": "Do not call"}).label == "Do not call"
    assert details_wrapup({"conversationId": "c-2", "participants": []}) is None


def test_the_details_query_asks_for_one_conversation_by_id() -> None:
    body = details_body("c-1", T0)
    assert body["interval"] == "2026-11-24T20:49:03.123Z/2026-11-25T20:49:03.123Z"
    predicate = body["conversationFilters"][0]["predicates"][0]
    assert (predicate["dimension"], predicate["value"]) == ("conversationId", "c-1")


def test_a_negative_wrapup_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="wrap-up timeout"):
        WrapupWait(timeout_s=-1)
