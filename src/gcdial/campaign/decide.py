"""What one dial attempt's result does to the journal: a pure function, tested by a table.

The runner turns whatever happened to an attempt (the dialing core's handle, or the exception it
raised) into an :class:`AttemptResult`, asks :func:`journal_change` what that means for the
contact, and applies the :class:`Change` (journal write, events, agent retirement, the refusal
streak). No I/O here: every rule about "is this contact done, dialed again, or left for a
person?" lives in this one function.

The rules, in order of importance:

- anything that may have rung the customer and was not proven otherwise is ``unknown``: never
  dialed again automatically (a person decides with ``gcdial campaign review``);
- a create proven *not placed* by the resolution ladder goes back in the queue at once, without
  using up one of the contact's attempts;
- a call placed and followed to its end gets its outcome, and a retry when the policy says so
  (the policy is applied with today's limits, to every earlier outcome of the contact);
- a refusal that says nothing about the contact (credentials, permissions, the agent) leaves the
  contact to be dialed again; a refusal of this contact (a 400 for its number) finishes it as
  ``not_sent``;
- a call that ended with the agent's wrap-up code does what the campaign's wrap-up rules say
  (:func:`wrapup_change`): done, retry after a delay, callback at a time, do-not-call, wrong
  number. A wrap-up that was waited for and never came leaves the retry policy in charge, and
  the call is listed for review.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, Literal

from gcdial.campaign.rules import CallingWindow, RetryDecision, RetryPolicy
from gcdial.campaign.wrapup_rules import WrapupAction, WrapupRule, WrapupRules, callback_time
from gcdial.http import MAX_RETRY_AFTER_S
from gcdial.monitor.wrapup import Wrapup

__all__ = [
    "NETWORK_RETRY",
    "AttemptResult",
    "Change",
    "ResultKind",
    "WrapupContext",
    "journal_change",
    "retry_decision",
    "wrapup_change",
]

NETWORK_RETRY: Final = timedelta(seconds=15)
"""A contact whose call could not be sent (network) waits this long before it is tried again."""


class ResultKind(StrEnum):
    """What happened to one attempt."""

    ENDED = "ended"  # placed and followed to its end (``outcome``)
    LOST_TRACK = "lost_track"  # placed, but its end was never seen
    NOT_PLACED = "not_placed"  # an ambiguous create proven not placed by the ladder
    UNKNOWN = "unknown"  # may have rung: for a person
    RATE_LIMITED = "rate_limited"  # 429 after the transport's own retries: nothing placed
    NOT_SENT = "not_sent"  # the request provably never left (connection failed before sending)
    REFUSED = "refused"  # a 4xx about this call: nothing placed
    AGENT_REFUSED = "agent_refused"  # a 4xx about the agent (no station, inactive, not found)
    SYSTEMIC = "systemic"  # 401/403 and the like: nothing wrong with the contact
    INVALID = "invalid"  # refused before sending: the contact's data cannot be dialed
    FATAL = "fatal"  # credentials or configuration: the run must stop


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """One attempt's result, as data."""

    kind: ResultKind
    detail: str
    outcome: str | None = None
    error_code: str | None = None
    context_id: str | None = None
    retry_after_s: float | None = None
    talk_s: float | None = None
    conversation_id: str | None = None
    wrapup: Wrapup | None = None
    wrapup_missing: bool = False
    error: BaseException | None = field(default=None, compare=False, repr=False)
    """The exception behind the result, for the run's stop message (not used to decide)."""


@dataclass(frozen=True, slots=True)
class Change:
    """What the journal (and the run) must do after an attempt.

    ``action``: ``outcome`` (the call ended: :meth:`Attempts.record_outcome`), ``not_sent``
    (nothing was placed: :meth:`Attempts.mark_not_sent`, the attempt not counted) or ``unknown``
    (:meth:`Attempts.mark_unknown`). ``retry_at`` set: the contact waits for another attempt.
    """

    action: Literal["outcome", "not_sent", "unknown"]
    outcome: str
    detail: str
    retry_at: datetime | None = None
    error_code: str | None = None
    context_id: str | None = None
    talk_s: float | None = None
    retire_agent: bool = False
    trouble: bool = False  # counts towards the "calls refused in a row" stop
    in_streak: bool = False  # finished by a refusal: reopened if the run stops for refusals
    fatal: bool = False  # the run stops
    placed: bool = False  # a call reached Genesys (resets the refusal streak)
    wrapup: Wrapup | None = None
    wrapup_action: str | None = None  # a WrapupAction's value, or "missing"
    dnc: bool = False  # the number goes on the do-not-call list


@dataclass(frozen=True, slots=True)
class WrapupContext:
    """What the wrap-up rules need to know of the contact: its zones (for a callback's time),
    the calling window, and its attributes (a callback time may be one)."""

    rules: WrapupRules
    window: CallingWindow
    zones: tuple[str, ...]
    attributes: Mapping[str, str] = field(default_factory=dict)


def retry_decision(
    policy: RetryPolicy,
    outcomes: Sequence[str],
    now: datetime,
    *,
    wrapup_action: str | None = None,
) -> RetryDecision:
    """What the policy says after the calls that ended with ``outcomes`` (oldest first): retry
    (when), or stop. Applied after every call, and again before a scheduled retry is dialed, so
    that limits lowered at resume bind retries already scheduled. ``wrapup_action``: what the
    last call's wrap-up asked (a callback is kept; a retry within the attempts)."""
    if not outcomes:
        return RetryDecision(True, now, "never called")
    if wrapup_action in (WrapupAction.CALLBACK, WrapupAction.RETRY):
        # A callback or retry asked at wrap-up is one more attempt, within the same limit: a
        # customer who asks for a callback on every call is not called forever.
        customer = sum(1 for o in outcomes if policy.counts_as_attempt(o))
        if customer >= policy.max_attempts:
            return RetryDecision(
                False, None, f"{wrapup_action} after {customer} attempt(s): giving up"
            )
        return RetryDecision(True, now, f"{wrapup_action} {customer + 1} asked at wrap-up")
    customer = sum(1 for o in outcomes if policy.counts_as_attempt(o))
    agent_side = sum(1 for o in outcomes if o in policy.agent_side)
    return policy.after(outcomes[-1], attempts=customer, agent_failures=agent_side, now=now)


def _detail(outcome: str, decision: str, *, retried: bool) -> str:
    """The outcome's reason, plus what happens next when that is news (a retry, giving up)."""
    if not outcome:
        return decision
    if not retried and decision.startswith("final outcome"):
        return outcome
    return f"{outcome}; {decision}"


def journal_change(
    result: AttemptResult,
    earlier: Sequence[str],
    policy: RetryPolicy,
    now: datetime,
    wrapup: WrapupContext | None = None,
) -> Change:
    """The change ``result`` makes for a contact whose earlier calls ended with ``earlier``;
    ``wrapup``: the campaign's wrap-up rules, for a call that ended with a wrap-up code."""
    kind = result.kind
    if kind is ResultKind.ENDED and result.wrapup is not None and wrapup is not None:
        rule, _ = wrapup.rules.rule_for(result.wrapup.code, result.wrapup.name)
        if rule.action is not WrapupAction.POLICY:
            return wrapup_change(result, result.wrapup, earlier, policy, now, wrapup)
    if kind is ResultKind.ENDED:
        outcome = result.outcome or "failed"
        decision = retry_decision(policy, [*earlier, outcome], now)
        return Change(
            "outcome",
            outcome,
            _detail(result.detail, decision.reason, retried=decision.retry),
            retry_at=decision.at if decision.retry else None,
            talk_s=result.talk_s,
            placed=True,
            error_code=result.error_code,
            context_id=result.context_id,
            wrapup=result.wrapup,
            wrapup_action=(
                "missing"
                if result.wrapup_missing
                else WrapupAction.POLICY.value
                if result.wrapup is not None
                else None
            ),
        )
    if kind is ResultKind.LOST_TRACK:
        # Placed, end unseen: the customer may have talked; for a person, never re-dialed.
        return Change(
            "outcome",
            "unknown",
            result.detail,
            placed=True,
            error_code=result.error_code,
            context_id=result.context_id,
        )
    if kind is ResultKind.UNKNOWN:
        return Change(
            "unknown",
            "unknown",
            result.detail,
            trouble=True,
            error_code=result.error_code,
            context_id=result.context_id,
        )
    if kind is ResultKind.NOT_PLACED:
        return Change("not_sent", "not_sent", f"proven not placed: {result.detail}", retry_at=now)
    if kind is ResultKind.RATE_LIMITED:
        # A longer Retry-After than the rate budget's cap is not believed (and could not even be
        # added to a date): a 429 placed nothing, so trying sooner is safe.
        wait = timedelta(seconds=min(max(result.retry_after_s or 1.0, 1.0), MAX_RETRY_AFTER_S))
        return Change(
            "not_sent",
            "not_sent",
            "rate limited (429) after retrying; tried again later",
            retry_at=now + wait,
            error_code=result.error_code,
            context_id=result.context_id,
        )
    if kind is ResultKind.NOT_SENT:
        return Change(
            "not_sent",
            "not_sent",
            f"not sent: {result.detail}",
            retry_at=now + NETWORK_RETRY,
            trouble=True,
        )
    if kind is ResultKind.AGENT_REFUSED:
        return Change(
            "not_sent",
            "not_sent",
            f"refused for the agent: {result.detail}",
            retry_at=now,
            retire_agent=True,
            error_code=result.error_code,
            context_id=result.context_id,
        )
    if kind is ResultKind.SYSTEMIC:
        return Change(
            "not_sent",
            "not_sent",
            result.detail,
            retry_at=now,
            trouble=True,
            error_code=result.error_code,
            context_id=result.context_id,
        )
    if kind is ResultKind.REFUSED:
        return Change(
            "not_sent",
            "not_sent",
            result.detail,
            trouble=True,
            in_streak=True,
            error_code=result.error_code,
            context_id=result.context_id,
        )
    if kind is ResultKind.INVALID:
        return Change(
            "not_sent",
            "not_sent",
            result.detail,
            error_code=result.error_code,
            context_id=result.context_id,
        )
    # FATAL: nothing was sent; the contact stays dialable for the resume after the fix.
    return Change("not_sent", "not_sent", f"not sent: {result.detail}", retry_at=now, fatal=True)


def wrapup_change(
    result: AttemptResult,
    wrapup: Wrapup,
    earlier: Sequence[str],
    policy: RetryPolicy,
    now: datetime,
    context: WrapupContext,
) -> Change:
    """What the wrap-up rules make of a call that ended with ``wrapup``."""
    outcome = result.outcome or "failed"
    rule, mapped = context.rules.rule_for(wrapup.code, wrapup.name)
    label = f"wrap-up {wrapup.label}" + ("" if mapped else " (unmapped: the default)")
    retry_at: datetime | None = None
    action = rule.action
    limit = retry_decision(policy, [*earlier, outcome], now, wrapup_action=action)
    if action is WrapupAction.CALLBACK and not limit.retry:
        label += f"; callback asked, but {limit.reason}"
    elif action is WrapupAction.CALLBACK:
        at = _callback_at(rule, wrapup, context, now)
        if at is None:
            rule = context.rules.callback_fallback
            action = rule.action
            label += f"; no callback time found, so {rule}"
        else:
            retry_at = at
            label += f"; callback at {at:%Y-%m-%d %H:%M} UTC"
    if action is WrapupAction.RETRY and rule.delay is not None:
        decision = retry_decision(policy, [*earlier, outcome], now, wrapup_action=action)
        if decision.retry:
            retry_at = now + rule.delay
            label += f"; {rule}"
        else:
            label += f"; {decision.reason}"
    elif action is WrapupAction.DNC:
        label += "; added to the do-not-call list"
    elif action is WrapupAction.WRONG_NUMBER:
        label += "; wrong number, not retried"
    return Change(
        "outcome",
        outcome,
        label,
        retry_at=retry_at,
        talk_s=result.talk_s,
        placed=True,
        error_code=result.error_code,
        context_id=result.context_id,
        wrapup=wrapup,
        wrapup_action=action.value,
        dnc=action is WrapupAction.DNC,
    )


def _callback_at(
    rule: WrapupRule, wrapup: Wrapup, context: WrapupContext, now: datetime
) -> datetime | None:
    """The callback's time (notes first, then the attribute), moved into the calling window."""
    if not context.zones:
        return None
    zone = context.zones[0]
    texts = ([wrapup.notes] if rule.notes else []) + (
        [context.attributes.get(rule.attribute)] if rule.attribute else []
    )
    for text in texts:
        at = callback_time(text, zone, now)
        if at is not None:
            return context.window.next_allowed(context.zones, max(at, now))
    return None
