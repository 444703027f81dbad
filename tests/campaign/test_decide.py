# ruff: noqa: E501 - the table reads best one row per line
"""What an attempt's result does to the journal: the whole rule set, as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gcdial.campaign.decide import (
    NETWORK_RETRY,
    AttemptResult,
    ResultKind,
    journal_change,
    retry_decision,
)
from gcdial.campaign.rules import RetryPolicy
from gcdial.http import MAX_RETRY_AFTER_S

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
POLICY = RetryPolicy(
    max_attempts=2,
    delays={"no_answer": timedelta(hours=1), "busy": timedelta(minutes=10)},
)

K = ResultKind
H = timedelta(hours=1)

# (result, earlier outcomes) -> (action, outcome, retry_at offset or None, flags set)
TABLE = [
    (AttemptResult(K.ENDED, "ok", outcome="answered", talk_s=12.0), [], "outcome", "answered", None, {"placed"}),
    (AttemptResult(K.ENDED, "x", outcome="no_answer"), [], "outcome", "no_answer", H, {"placed"}),
    (AttemptResult(K.ENDED, "x", outcome="no_answer"), ["no_answer"], "outcome", "no_answer", None, {"placed"}),
    (AttemptResult(K.ENDED, "x", outcome="no_answer"), ["agent_no_answer"], "outcome", "no_answer", H, {"placed"}),
    (AttemptResult(K.ENDED, "x", outcome="agent_rejected"), ["no_answer"], "outcome", "agent_rejected", timedelta(0), {"placed"}),
    (AttemptResult(K.ENDED, "x", outcome="invalid_number"), [], "outcome", "invalid_number", None, {"placed"}),
    (AttemptResult(K.LOST_TRACK, "lost"), [], "outcome", "unknown", None, {"placed"}),
    (AttemptResult(K.UNKNOWN, "5xx"), [], "unknown", "unknown", None, {"trouble"}),
    (AttemptResult(K.NOT_PLACED, "not found after settling"), ["no_answer"], "not_sent", "not_sent", timedelta(0), set()),
    (AttemptResult(K.RATE_LIMITED, "429", retry_after_s=30), [], "not_sent", "not_sent", timedelta(seconds=30), set()),
    (AttemptResult(K.RATE_LIMITED, "429", retry_after_s=1e12), [], "not_sent", "not_sent", timedelta(seconds=MAX_RETRY_AFTER_S), set()),
    (AttemptResult(K.RATE_LIMITED, "429"), [], "not_sent", "not_sent", timedelta(seconds=1), set()),
    (AttemptResult(K.NOT_SENT, "refused"), [], "not_sent", "not_sent", NETWORK_RETRY, {"trouble"}),
    (AttemptResult(K.AGENT_REFUSED, "no station"), [], "not_sent", "not_sent", timedelta(0), {"retire_agent"}),
    (AttemptResult(K.SYSTEMIC, "403"), [], "not_sent", "not_sent", timedelta(0), {"trouble"}),
    (AttemptResult(K.REFUSED, "400", error_code="bad.request"), [], "not_sent", "not_sent", None, {"trouble", "in_streak"}),
    (AttemptResult(K.INVALID, "attributes too long"), [], "not_sent", "not_sent", None, set()),
    (AttemptResult(K.FATAL, "no credentials"), [], "not_sent", "not_sent", timedelta(0), {"fatal"}),
]  # fmt: skip
FLAGS = ("placed", "trouble", "in_streak", "retire_agent", "fatal")


@pytest.mark.parametrize(("result", "earlier", "action", "outcome", "retry", "flags"), TABLE)
def test_every_result_makes_exactly_this_change(
    result: AttemptResult,
    earlier: list[str],
    action: str,
    outcome: str,
    retry: timedelta | None,
    flags: set[str],
) -> None:
    change = journal_change(result, earlier, POLICY, NOW)
    assert change.action == action
    assert change.outcome == outcome
    assert change.retry_at == (NOW + retry if retry is not None else None)
    assert {f for f in FLAGS if getattr(change, f)} == flags


def test_every_result_kind_is_in_the_table() -> None:
    assert {row[0].kind for row in TABLE} == set(ResultKind)


def test_what_may_have_rung_is_never_scheduled_again() -> None:
    for kind in (K.UNKNOWN, K.LOST_TRACK):
        change = journal_change(AttemptResult(kind, "?"), [], POLICY, NOW)
        assert change.retry_at is None
        assert change.outcome == "unknown"


def test_codes_and_talk_time_are_carried() -> None:
    refused = AttemptResult(K.REFUSED, "no", error_code="bad.request", context_id="ctx")
    change = journal_change(refused, [], POLICY, NOW)
    assert (change.error_code, change.context_id) == ("bad.request", "ctx")
    answered = AttemptResult(K.ENDED, "ok", outcome="answered", talk_s=42.5)
    assert journal_change(answered, [], POLICY, NOW).talk_s == 42.5


def test_retry_decision_applies_todays_limits_to_the_whole_history() -> None:
    assert retry_decision(POLICY, [], NOW).retry
    assert retry_decision(POLICY, ["no_answer"], NOW).retry
    lowered = RetryPolicy(max_attempts=1, delays=POLICY.delays)
    assert not retry_decision(lowered, ["no_answer"], NOW).retry
    assert retry_decision(lowered, ["agent_no_answer"], NOW).retry
