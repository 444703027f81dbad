"""The resolution ladder's decisions, by table: no I/O, every "bad input and failure" case."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gcdial.calls import MAX_ATTRIBUTE_VALUE_CHARS, MAX_ATTRIBUTES, CallParams, check_attributes
from gcdial.errors import InputError
from gcdial.resolve import (
    UNKNOWN_SKEW_S,
    AnalyticsAnswer,
    Attempt,
    Evidence,
    LadderFacts,
    Verdict,
    decide,
    details_query,
    match_details,
    match_snapshot,
    same_number,
    search_interval,
)

AGENT = "11111111-1111-4111-8111-111111111111"
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
ATTEMPT = Attempt(
    attempt_id="a-1",
    agent_id=AGENT,
    number="+14155550100",
    sent_at=T0,
    sent_after=T0,
)
LIVE = Evidence("live", "frame carries a-1", "c-1")
FOUND = AnalyticsAnswer("found", "details carry a-1", "c-1")
NOT_FOUND = AnalyticsAnswer("not_found", "nothing carries a-1")


@pytest.mark.parametrize(
    ("facts", "verdict"),
    [
        # Live evidence is proof on its own, whatever else is missing.
        (LadderFacts(live=LIVE), Verdict.PLACED),
        (LadderFacts(live=LIVE, details=NOT_FOUND, settled=True), Verdict.PLACED),
        (LadderFacts(details=FOUND), Verdict.PLACED),
        # Not placed needs all three: a complete "not found", settled, channel healthy.
        (LadderFacts(details=NOT_FOUND, settled=True, channel_healthy=True), Verdict.NOT_PLACED),
        (LadderFacts(details=NOT_FOUND, settled=False, channel_healthy=True), Verdict.UNKNOWN),
        # A notifications outage during the settle time: never not placed.
        (LadderFacts(details=NOT_FOUND, settled=True, channel_healthy=False), Verdict.UNKNOWN),
        # No analytics permission (403), rate limited (429), errors, a page too many: unknown.
        (LadderFacts(details=AnalyticsAnswer("forbidden", "403"), settled=True), Verdict.UNKNOWN),
        (
            LadderFacts(
                details=AnalyticsAnswer("rate_limited", "429"), settled=True, channel_healthy=True
            ),
            Verdict.UNKNOWN,
        ),
        (
            LadderFacts(
                details=AnalyticsAnswer("error", "500"), settled=True, channel_healthy=True
            ),
            Verdict.UNKNOWN,
        ),
        (
            LadderFacts(
                details=AnalyticsAnswer("incomplete", "1,000 hits"),
                settled=True,
                channel_healthy=True,
            ),
            Verdict.UNKNOWN,
        ),
        (LadderFacts(settled=True, channel_healthy=True), Verdict.UNKNOWN),
        # Long after the attempt, the details alone decide.
        (LadderFacts(details=NOT_FOUND, settled=True, long_past=True), Verdict.NOT_PLACED),
        (LadderFacts(details=NOT_FOUND, settled=False, long_past=True), Verdict.UNKNOWN),
    ],
)
def test_decide(facts: LadderFacts, verdict: Verdict) -> None:
    resolution = decide(facts)
    assert resolution.verdict is verdict
    assert resolution.evidence, "every verdict carries its evidence"
    assert resolution.safe_to_redial is (verdict is Verdict.NOT_PLACED)
    if verdict is Verdict.PLACED:
        assert resolution.conversation_id == "c-1"
    else:
        assert resolution.conversation_id is None


def _frame(
    *,
    attributes: dict[str, str] | None = None,
    agent: str = AGENT,
    address: str = "tel:+14155550100",
    start: datetime = T0 + timedelta(seconds=1),
) -> dict[str, Any]:
    customer: dict[str, Any] = {
        "id": "p-2",
        "purpose": "customer",
        "address": address,
        "state": "dialing",
        "startTime": start.isoformat(),
    }
    if attributes is not None:
        customer["attributes"] = attributes
    return {
        "id": "c-9",
        "participants": [
            {
                "id": "p-1",
                "purpose": "agent",
                "user": {"id": agent},
                "state": "connected",
                "startTime": start.isoformat(),
            },
            customer,
        ],
    }


@pytest.mark.parametrize(
    ("frame", "found"),
    [
        (_frame(attributes={"gcdialAttemptId": "a-1"}), True),
        (_frame(attributes={"gcdialAttemptId": "a-2"}), False),  # another attempt's call
        # No tag in frames: the agent's call to the number, after the intent.
        (_frame(), True),
        (_frame(attributes={"crm": "7"}), True),
        (_frame(start=T0 - timedelta(seconds=5)), False),  # started before the intent
        (_frame(agent="someone-else"), False),
        (_frame(address="tel:+14155550199"), False),
    ],
)
def test_live_evidence(frame: dict[str, Any], found: bool) -> None:
    evidence = match_snapshot(ATTEMPT, frame)
    assert (evidence is not None) is found
    if evidence is not None:
        assert evidence.conversation_id == "c-9"


def test_live_number_fallback_needs_the_servers_time() -> None:
    attempt = Attempt("a-1", AGENT, "+14155550100", sent_at=T0, sent_after=None)
    assert match_snapshot(attempt, _frame()) is None


def _conversation(
    cid: str,
    *,
    attributes: dict[str, str] | None = None,
    dnis: str | None = "tel:+14155550100",
    start: datetime = T0 + timedelta(seconds=2),
) -> dict[str, Any]:
    session: dict[str, Any] = {"mediaType": "voice", "direction": "outbound"}
    if dnis is not None:
        session["dnis"] = dnis
    customer: dict[str, Any] = {"purpose": "external", "sessions": [session]}
    if attributes is not None:
        customer["attributes"] = attributes
    return {
        "conversationId": cid,
        "conversationStart": start.isoformat(),
        "participants": [{"purpose": "agent", "userId": AGENT, "sessions": [session]}, customer],
    }


@pytest.mark.parametrize(
    ("conversations", "status", "cid"),
    [
        ([], None, None),
        ([_conversation("c-1", attributes={"gcdialAttemptId": "a-1"})], "found", "c-1"),
        ([_conversation("c-1", attributes={"gcdialAttemptId": "a-2"})], None, None),
        # The details leave attributes out: matched on number and time.
        ([_conversation("c-1")], "found", "c-1"),
        ([_conversation("c-1"), _conversation("c-2")], "incomplete", None),
        ([_conversation("c-1", start=T0 - timedelta(minutes=1))], None, None),
        ([_conversation("c-1", dnis="tel:+14155550199")], None, None),
        # An untagged call whose number cannot be read could be this attempt.
        ([_conversation("c-1", dnis=None)], "incomplete", None),
        (
            [
                _conversation("c-1", attributes={"gcdialAttemptId": "a-2"}),
                _conversation("c-2", attributes={"gcdialAttemptId": "a-1"}),
            ],
            "found",
            "c-2",
        ),
    ],
)
def test_details_matching(
    conversations: list[dict[str, Any]], status: str | None, cid: str | None
) -> None:
    answer = match_details(ATTEMPT, conversations)
    if status is None:
        assert answer is None
    else:
        assert answer is not None
        assert answer.status == status
        assert answer.conversation_id == cid


def test_an_untagged_call_before_the_tight_bound_is_not_the_attempt() -> None:
    """The last ``Date`` seen was long before the POST (T0); the server's time when it left was
    T0 + 5 min. An untagged call of the agent to the number at T0 + 1 min is an earlier call."""
    tight = replace(ATTEMPT, match_after=T0 + timedelta(minutes=5))
    earlier = _conversation("c-1", start=T0 + timedelta(minutes=1))
    assert match_details(tight, [earlier]) is None
    assert match_snapshot(tight, _frame(start=T0 + timedelta(minutes=1))) is None
    later = _conversation("c-2", start=T0 + timedelta(minutes=5, seconds=1))
    answer = match_details(tight, [earlier, later])
    assert answer is not None
    assert answer.conversation_id == "c-2"
    # The search still starts from the wide bound.
    start, _ = search_interval(tight, T0 + timedelta(minutes=6))
    assert start < T0


def test_a_clock_skew_only_widens_the_search_interval() -> None:
    server_now = T0 + timedelta(minutes=3)
    start, end = search_interval(ATTEMPT, server_now)
    assert start < T0
    assert end > server_now
    # Without the server's clock, local times are widened by the worst skew believed.
    blind = Attempt("a-1", AGENT, "+14155550100", sent_at=T0, sent_after=None)
    start, end = search_interval(blind, None)
    assert start <= T0 - timedelta(seconds=UNKNOWN_SKEW_S)
    assert end >= T0 + timedelta(seconds=UNKNOWN_SKEW_S)


def test_details_query_filters_on_the_agent_and_voice() -> None:
    body = details_query(ATTEMPT, (T0, T0 + timedelta(minutes=5)), page=2)
    assert body["interval"] == "2026-11-30T10:00:00.000Z/2026-11-30T10:05:00.000Z"
    assert body["paging"] == {"pageSize": 100, "pageNumber": 2}
    predicates = body["segmentFilters"][0]["predicates"]
    assert {(p["dimension"], p["value"]) for p in predicates} == {
        ("userId", AGENT),
        ("mediaType", "voice"),
    }


@pytest.mark.parametrize(
    ("dialed", "seen", "same"),
    [
        ("+14155550100", "tel:+14155550100", True),
        ("+14155550100", "+1 (415) 555-0100", True),
        ("+14155550100", "sip:+14155550100@edge.example", True),
        ("+14155550100", "4155550100", True),
        ("+14155550100", "tel:+14155550101", False),
        ("+14155550100", None, False),
        ("+14155550100", "tel:", False),
    ],
)
def test_same_number(dialed: str, seen: object, same: bool) -> None:
    assert same_number(dialed, seen) is same


def test_tag_collision_is_input_error() -> None:
    params = CallParams(to="+14155550100", attributes={"gcdialAttemptId": "mine"})
    with pytest.raises(InputError, match="gcdialAttemptId") as caught:
        params.with_attribute("gcdialAttemptId", "a-1")
    assert "attempt_attribute" in str(caught.value.hint)


@pytest.mark.parametrize(
    ("attributes", "words"),
    [
        ({f"k{i}": "v" for i in range(MAX_ATTRIBUTES + 1)}, "at most 50"),
        ({"note": "x" * (MAX_ATTRIBUTE_VALUE_CHARS + 1)}, "attributes.note"),
        ({"k" * 300: "v"}, "1 to 256 characters"),
        ({" ": "v"}, "1 to 256 characters"),
        ({f"k{i}": "x" * 1900 for i in range(12)}, "total"),
    ],
)
def test_oversized_attributes_are_refused_before_sending(
    attributes: dict[str, str], words: str
) -> None:
    with pytest.raises(InputError, match=words):
        check_attributes(attributes)
    with pytest.raises(InputError):
        CallParams(to="+14155550100", attributes=attributes).body()


def test_call_params_keyword_form_is_strict() -> None:
    assert CallParams.of(None, {"to": "+14155550100"}) == CallParams(to="+14155550100")
    with pytest.raises(InputError, match="Unknown or missing call option"):
        CallParams.of(None, {"to": "+14155550100", "colour": "red"})
    with pytest.raises(InputError, match="not both"):
        CallParams.of(CallParams(to="+1"), {"label": "x"})
