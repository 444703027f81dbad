"""A call's final outcome (answered, no answer, busy, ...) classified from its events or snapshot.

How Genesys' ``disconnectType`` and ``errorInfo.code`` map to outcomes is UNCONFIRMED for real
orgs, so the mapping is data (:class:`OutcomeRules`) that a user can override without a code
change; the defaults cover the signals of gcdial's emulator.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from gcdial.monitor.events import (
    CallEvent,
    ErrorInfo,
    EventKind,
    Role,
    Snapshot,
    agent_wrapup,
    as_snapshot,
    ended_by,
    is_over,
    merge,
    parse_time,
    participants_of,
    replay,
    role_of,
)
from gcdial.monitor.wrapup import Wrapup


class OutcomeKind(StrEnum):
    """How a call ended, in the user's words; the values are what ``--json`` prints."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    INVALID_NUMBER = "invalid_number"
    UNREACHABLE = "unreachable"
    AGENT_NO_ANSWER = "agent_no_answer"
    AGENT_REJECTED = "agent_rejected"
    FAILED = "failed"
    ABANDONED = "abandoned"
    UNKNOWN = "unknown"


_O = OutcomeKind


@dataclass(frozen=True)
class OutcomeRules:
    """The data table from Genesys' disconnect signals to outcomes.

    ``error_codes`` is consulted first, on the leg that failed; a key matches a code equal to it or
    ending in ``"." + key``. The disconnect-type tables apply to a leg that ended without ever
    connecting: the agent's leg first (the agent is rung first), then the customer's.
    """

    error_codes: Mapping[str, OutcomeKind] = field(default_factory=dict)
    agent_disconnect_types: Mapping[str, OutcomeKind] = field(default_factory=dict)
    customer_disconnect_types: Mapping[str, OutcomeKind] = field(default_factory=dict)
    agent_default: OutcomeKind = OutcomeKind.FAILED
    customer_default: OutcomeKind = OutcomeKind.FAILED

    def kind_for_code(self, code: str | None) -> OutcomeKind | None:
        """The outcome an ``errorInfo.code`` maps to (the longest matching key wins), if any."""
        if not code:
            return None
        code = code.lower()
        best: tuple[int, OutcomeKind] | None = None
        for key, kind in self.error_codes.items():
            key = key.lower()
            if (code == key or code.endswith("." + key)) and (best is None or len(key) > best[0]):
                best = (len(key), kind)
        return best[1] if best else None

    def with_overrides(self, overrides: Mapping[str, Any]) -> OutcomeRules:
        """These rules with entries replaced from a JSON-shaped mapping.

        Keys: ``errorCodes``, ``agentDisconnectTypes``, ``customerDisconnectTypes`` (each a map to
        an outcome name), ``agentDefault``, ``customerDefault``. Raises ValueError naming the bad
        entry and the valid outcomes.
        """
        tables = {
            "errorCodes": "error_codes",
            "agentDisconnectTypes": "agent_disconnect_types",
            "customerDisconnectTypes": "customer_disconnect_types",
        }
        defaults = {"agentDefault": "agent_default", "customerDefault": "customer_default"}
        changes: dict[str, Any] = {}
        for name, value in overrides.items():
            if name in tables:
                if not isinstance(value, Mapping):
                    raise ValueError(f"outcome rules: {name} must be an object of name -> outcome")
                table = dict(getattr(self, tables[name]))
                for key, kind in value.items():
                    table[str(key).lower()] = _parse_kind(kind, f"{name}.{key}")
                changes[tables[name]] = MappingProxyType(table)
            elif name in defaults:
                changes[defaults[name]] = _parse_kind(value, name)
            else:
                valid = ", ".join([*tables, *defaults])
                raise ValueError(f"outcome rules: unknown key {name!r}; expected one of {valid}")
        return replace(self, **changes)


def _parse_kind(value: object, where: str) -> OutcomeKind:
    try:
        return OutcomeKind(str(value).lower())
    except ValueError:
        valid = ", ".join(k.value for k in OutcomeKind)
        raise ValueError(
            f"outcome rules: {where} = {value!r} is not an outcome; use one of {valid}"
        ) from None


DEFAULT_RULES = OutcomeRules(
    error_codes=MappingProxyType(
        {
            "error.ininedgecontrol.remote.busy": _O.BUSY,
            "error.ininedgecontrol.remote.address.invalid": _O.INVALID_NUMBER,
            "error.ininedgecontrol.network.failure": _O.UNREACHABLE,
        }
    ),
    agent_disconnect_types=MappingProxyType(
        {
            "timeout": _O.AGENT_NO_ANSWER,
            "inactivity": _O.AGENT_NO_ANSWER,
            "client": _O.AGENT_REJECTED,
            "endpoint": _O.AGENT_REJECTED,
            "peer": _O.ABANDONED,
        }
    ),
    customer_disconnect_types=MappingProxyType(
        {
            "timeout": _O.NO_ANSWER,
            "inactivity": _O.NO_ANSWER,
            "endpoint": _O.BUSY,
            "transport.failure": _O.UNREACHABLE,
            # Our side (the agent or gcdial) hung up while the customer was still ringing.
            "client": _O.ABANDONED,
            "peer": _O.ABANDONED,
        }
    ),
)
"""The built-in rules: the emulator's signals, and best guesses for real orgs (UNCONFIRMED)."""

ERROR_MEANINGS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "error.ininedgecontrol.remote.busy": "the line was busy",
        "error.ininedgecontrol.remote.address.invalid": "the number does not exist",
        "error.ininedgecontrol.network.failure": "the network could not reach the number",
    }
)
"""What the ``errorInfo.code`` values the rules know mean, in words for the people reading a
call's result (the one table: the CLI, the service and the page all read it); the code itself
stays in the outcome's ``error`` (JSON, the call's events, the review details). A code not listed
here is shown by Genesys' own ``errorInfo.message``."""


def error_meaning(error: ErrorInfo) -> str:
    """``error`` in words: the table's meaning, else Genesys' own message, else a plain phrase."""
    code = (error.code or "").lower()
    for key in sorted(ERROR_MEANINGS, key=len, reverse=True):
        if code == key or code.startswith(key + "."):
            return ERROR_MEANINGS[key]
    if error.message:
        return error.message.rstrip(".")
    return "the telephone network reported an error"


@dataclass(frozen=True)
class Outcome:
    """How a call ended (or that it has not): kind, talk time and the deciding disconnect."""

    kind: OutcomeKind
    conversation_id: str | None
    ended: bool
    reason: str
    talk_seconds: float | None = None
    agent_connected_at: dt.datetime | None = None
    customer_connected_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    decided_by: Role | None = None
    disconnect_type: str | None = None
    ended_by: str | None = None
    error: ErrorInfo | None = None
    wrapup: Wrapup | None = None
    """The agent's wrap-up, when it was waited for (or came with the call's last frame)."""
    wrapup_missing: bool = False
    """A wrap-up was waited for and never came (neither live nor in conversation details)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the last line of ``--json`` output)."""
        return {
            "event": "outcome",
            "conversationId": self.conversation_id,
            "outcome": self.kind.value,
            "ended": self.ended,
            "reason": self.reason,
            "talkSeconds": self.talk_seconds,
            "agentConnectedAt": _iso(self.agent_connected_at),
            "customerConnectedAt": _iso(self.customer_connected_at),
            "endedAt": _iso(self.ended_at),
            "decidedBy": self.decided_by.value if self.decided_by else None,
            "disconnectType": self.disconnect_type,
            "endedBy": self.ended_by,
            "errorInfo": (
                {"code": self.error.code, "message": self.error.message} if self.error else None
            ),
            "wrapup": self.wrapup.to_dict() if self.wrapup is not None else None,
            "wrapupMissing": self.wrapup_missing,
        }


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Facts:
    conversation: dict[str, Any] | None = None
    agent_connected: bool = False
    customer_connected: bool = False
    wrapup: Wrapup | None = None


def _facts_from_events(events: Iterable[CallEvent]) -> _Facts:
    facts = _Facts()
    for event in events:
        if event.participant:
            facts.conversation = merge(
                facts.conversation,
                {"id": event.conversation_id, "participants": [event.participant]},
            )
        elif facts.conversation is None and event.conversation_id:
            facts.conversation = {"id": event.conversation_id, "participants": []}
        facts.agent_connected |= event.kind is EventKind.AGENT_CONNECTED
        facts.customer_connected |= event.kind is EventKind.CUSTOMER_CONNECTED
        if event.wrapup is not None:
            facts.wrapup = event.wrapup
    return facts


def _facts(source: Snapshot | Iterable[CallEvent] | object) -> _Facts:
    snapshot = as_snapshot(source)
    if snapshot is not None:
        conversation, events = replay([snapshot])
        facts = _facts_from_events(events)
        facts.conversation = conversation
        return facts
    if isinstance(source, Iterable):
        return _facts_from_events(e for e in source if isinstance(e, CallEvent))
    return _Facts()


def classify(
    source: Snapshot | Iterable[CallEvent] | object, *, rules: OutcomeRules = DEFAULT_RULES
) -> Outcome:
    """The outcome of a call, from its events (any order) or its final CallConversation snapshot.

    Pure and total: anything it cannot make sense of is ``unknown``, never an exception.
    """
    facts = _facts(source)
    conversation = facts.conversation or {}
    cid = conversation.get("id")
    conversation_id = cid if isinstance(cid, str) else None
    parts = list(participants_of(conversation).values())
    agent = next((p for p in parts if role_of(p) is Role.AGENT), None)
    customer = next((p for p in parts if role_of(p) is Role.CUSTOMER), None)
    base = Outcome(
        kind=OutcomeKind.UNKNOWN,
        conversation_id=conversation_id,
        ended=is_over(conversation),
        reason="",
        agent_connected_at=_connected_at(agent),
        customer_connected_at=_connected_at(customer),
        ended_at=_ended_at(parts),
        wrapup=facts.wrapup or agent_wrapup(conversation),
    )
    if not parts:
        return replace(base, reason="no participants seen")
    if not base.ended:
        return replace(base, reason="the call has not ended yet")
    agent_connected = facts.agent_connected or base.agent_connected_at is not None
    customer_connected = facts.customer_connected or base.customer_connected_at is not None

    if customer is not None and customer_connected:
        if agent is not None and not agent_connected:
            return _decide(base, _O.ABANDONED, agent, "the customer answered but no agent was on")
        talk = _talk_seconds(customer, agent)
        talked = f"; talked {talk:.1f} s" if talk is not None else ""
        return replace(
            _decide(base, _O.ANSWERED, customer, "the customer answered" + talked),
            talk_seconds=talk,
        )
    if agent is not None and not agent_connected:
        kind = _leg_kind(agent, rules, rules.agent_disconnect_types, rules.agent_default)
        return _decide(base, kind, agent, "the agent's phone never connected")
    if customer is None:
        by = ended_by(Role.AGENT, _disconnect_type(agent)) if agent else "unknown"
        kind = _O.ABANDONED if by == "agent" else _O.FAILED
        return _decide(base, kind, agent, "the customer was never dialed")
    kind = _leg_kind(customer, rules, rules.customer_disconnect_types, rules.customer_default)
    return _decide(base, kind, customer, "the customer never answered")


def _leg_kind(
    leg: Mapping[str, Any],
    rules: OutcomeRules,
    table: Mapping[str, OutcomeKind],
    default: OutcomeKind,
) -> OutcomeKind:
    error = ErrorInfo.from_participant(leg)
    by_code = rules.kind_for_code(error.code if error else None)
    if by_code is not None:
        return by_code
    disconnect = _disconnect_type(leg)
    if disconnect is None:
        return default
    return table.get(disconnect.lower(), default)


def _decide(base: Outcome, kind: OutcomeKind, leg: Mapping[str, Any] | None, why: str) -> Outcome:
    if leg is None:
        return replace(base, kind=kind, reason=why)
    role = role_of(leg)
    disconnect = _disconnect_type(leg)
    error = ErrorInfo.from_participant(leg)
    if error is not None and kind is not _O.ANSWERED:
        detail = f": {error_meaning(error)}"  # the code stays in ``error``, for the details
    elif disconnect and kind is not _O.ANSWERED:
        detail = f" (disconnectType {disconnect})"
    else:
        detail = ""
    return replace(
        base,
        kind=kind,
        reason=why + detail,
        decided_by=role,
        disconnect_type=disconnect,
        ended_by=ended_by(role, disconnect, failed=error is not None) if disconnect else None,
        error=error,
    )


def _disconnect_type(leg: Mapping[str, Any] | None) -> str | None:
    value = leg.get("disconnectType") if leg is not None else None
    return str(value) if value is not None else None


def _connected_at(leg: Mapping[str, Any] | None) -> dt.datetime | None:
    return parse_time(leg.get("connectedTime")) if leg is not None else None


def _ended_at(parts: list[Mapping[str, Any]]) -> dt.datetime | None:
    ends = [t for p in parts if (t := parse_time(p.get("endTime"))) is not None]
    return max(ends) if ends else None


def _talk_seconds(customer: Mapping[str, Any], agent: Mapping[str, Any] | None) -> float | None:
    """Customer connected → the first of the two legs to end: the time both could talk."""
    start = parse_time(customer.get("connectedTime"))
    ends = [parse_time(customer.get("endTime"))]
    if agent is not None:
        ends.append(parse_time(agent.get("endTime")))
    known = [t for t in ends if t is not None and start is not None and t >= start]
    if start is None or not known:
        return None
    return round((min(known) - start).total_seconds(), 3)
