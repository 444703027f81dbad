"""A call's story as typed events, derived from successive CallConversation snapshots.

Genesys sends whole conversations, not transitions; this module diffs two snapshots into events.
Snapshots may come twice, late or out of order (a notification overtaken by a REST catch-up), so
each participant only ever moves forward: a snapshot that would move it backwards is ignored for
that participant. Unknown states and enum values are kept as strings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from gcdial.monitor.wrapup import Wrapup

Snapshot = Mapping[str, Any]
"""A CallConversation as a JSON-shaped mapping (wire names)."""


class EventKind(StrEnum):
    """What happened; the values are what ``--json`` prints."""

    AGENT_ALERTING = "agent_alerting"
    AGENT_CONNECTED = "agent_connected"
    CUSTOMER_DIALING = "customer_dialing"
    CUSTOMER_RINGING = "customer_ringing"
    CUSTOMER_CONNECTED = "customer_connected"
    HELD = "held"
    RESUMED = "resumed"
    STATE_CHANGED = "state_changed"
    PARTICIPANT_DISCONNECTED = "participant_disconnected"
    CALL_ENDED = "call_ended"
    WRAPUP = "wrapup"  # the agent's wrap-up code (after the call ended, usually)


class Role(StrEnum):
    """Which side of the call a participant is on."""

    AGENT = "agent"
    CUSTOMER = "customer"
    OTHER = "other"


AGENT_PURPOSES = frozenset({"agent", "user"})
# The on-behalf route's customer purpose is UNCONFIRMED: recognise both.
CUSTOMER_PURPOSES = frozenset({"customer", "external"})

ENDED_STATES = frozenset({"disconnected", "terminated"})
_RINGING_STATES = frozenset({"contacting", "alerting", "offering"})

# Ranks order a participant's life; unknown states sit with "connected" (in call, not ended).
_STATE_RANK: dict[str, int] = {
    "none": 0,
    "": 0,
    "dialing": 10,
    "contacting": 11,
    "offering": 12,
    "alerting": 13,
    "connected": 20,
    "disconnected": 30,
    "terminated": 31,
}
_UNKNOWN_RANK = 20
_ENDED_RANK = 30

# How a disconnectType says who ended a participant's leg: itself, the other side or the system.
_BY_SELF = frozenset({"endpoint", "client"})
_BY_PEER = frozenset({"peer"})


def as_snapshot(value: object) -> Snapshot | None:
    """A CallConversation as a wire-named mapping (a dict as is, a model dumped), else None."""
    if isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        dumped = dump(by_alias=True, mode="json", exclude_none=True)
        if isinstance(dumped, Mapping):
            return dumped
    return None


def state_of(participant: Mapping[str, Any]) -> str:
    """The participant's state, lower-cased; ``""`` when absent or not a string."""
    state = participant.get("state")
    return state.lower() if isinstance(state, str) else ""


def state_rank(state: str) -> int:
    """Where a state sits in a participant's life (higher is later)."""
    return _STATE_RANK.get(state, _UNKNOWN_RANK)


def role_of(participant: Mapping[str, Any]) -> Role:
    """Agent, customer or other, from the participant's ``purpose``."""
    purpose = participant.get("purpose")
    purpose = purpose.lower() if isinstance(purpose, str) else ""
    if purpose in AGENT_PURPOSES:
        return Role.AGENT
    if purpose in CUSTOMER_PURPOSES:
        return Role.CUSTOMER
    return Role.OTHER


def parse_time(value: object) -> dt.datetime | None:
    """An ISO 8601 timestamp as an aware datetime (UTC if no zone); None if absent or garbled."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def participants_of(snapshot: Snapshot | None) -> dict[str, Mapping[str, Any]]:
    """The snapshot's participants keyed by a stable key (their id), skipping malformed entries."""
    if not snapshot:
        return {}
    raw = snapshot.get("participants")
    if not isinstance(raw, list):
        return {}
    found: dict[str, Mapping[str, Any]] = {}
    for index, item in enumerate(raw):
        if isinstance(item, Mapping):
            found[_key(item, index)] = item
    return found


def _key(participant: Mapping[str, Any], index: int) -> str:
    pid = participant.get("id")
    if isinstance(pid, str) and pid:
        return pid
    # Without an id, fall back to what identifies the leg; the index only as a last resort.
    user = participant.get("user")
    user_id = user.get("id") if isinstance(user, Mapping) else None
    return f"~{participant.get('purpose')}|{user_id or participant.get('address') or index}"


def _later(old: Mapping[str, Any], new: Mapping[str, Any]) -> Mapping[str, Any]:
    """The newer view of one participant: ``new`` unless it would move the participant back."""
    old_rank, new_rank = state_rank(state_of(old)), state_rank(state_of(new))
    if new_rank < old_rank:
        return old
    if old.get("endTime") and not new.get("endTime") and new_rank == old_rank:
        return old
    merged = dict(new)
    # A later snapshot that omits a field it had before has not unset it (missing != cleared).
    for name, value in old.items():
        if name not in merged or merged[name] is None:
            merged[name] = value
    return merged


def merge(previous: Snapshot | None, snapshot: Snapshot) -> dict[str, Any]:
    """The conversation as known after ``snapshot``: each participant at its furthest state."""
    base: dict[str, Any] = dict(previous) if previous else {}
    for name, value in snapshot.items():
        if name != "participants" and value is not None:
            base[name] = value
    old = participants_of(previous)
    new = participants_of(snapshot)
    merged = dict(old)
    for key, participant in new.items():
        merged[key] = _later(old[key], participant) if key in old else dict(participant)
    base["participants"] = list(merged.values())
    return base


def is_over(snapshot: Snapshot | None) -> bool:
    """True when the call has participants and every one has left it."""
    parts = participants_of(snapshot)
    return bool(parts) and all(state_rank(state_of(p)) >= _ENDED_RANK for p in parts.values())


@dataclass(frozen=True)
class ErrorInfo:
    """Genesys' ``errorInfo`` on a participant: why its leg failed."""

    code: str | None
    message: str | None

    @classmethod
    def from_participant(cls, participant: Mapping[str, Any]) -> ErrorInfo | None:
        """The participant's errorInfo, or None when it has none."""
        raw = participant.get("errorInfo")
        if not isinstance(raw, Mapping):
            return None
        code, message = raw.get("code"), raw.get("message")
        if code is None and message is None:
            return None
        return cls(
            code=str(code) if code is not None else None,
            message=str(message) if message is not None else None,
        )


@dataclass(frozen=True)
class CallEvent:
    """One transition in a call, with its server timestamp when the snapshot carried one."""

    kind: EventKind
    conversation_id: str | None
    at: dt.datetime | None
    role: Role | None = None
    participant_id: str | None = None
    state: str | None = None
    disconnect_type: str | None = None
    ended_by: str | None = None
    error: ErrorInfo | None = None
    participant: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    wrapup: Wrapup | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (one line of ``--json`` output)."""
        out: dict[str, Any] = {
            "event": self.kind.value,
            "conversationId": self.conversation_id,
            "at": _iso(self.at),
        }
        if self.role is not None:
            out["role"] = self.role.value
            out["participantId"] = self.participant_id
            out["state"] = self.state
        if self.kind is EventKind.PARTICIPANT_DISCONNECTED:
            out["disconnectType"] = self.disconnect_type
            out["endedBy"] = self.ended_by
        if self.error is not None:
            out["errorInfo"] = {"code": self.error.code, "message": self.error.message}
        if self.wrapup is not None:
            out["wrapup"] = self.wrapup.to_dict()
        return out


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ended_by(role: Role, disconnect_type: str | None, *, failed: bool = False) -> str:
    """Who ended a leg: agent, customer, system or unknown, judged by its disconnectType.

    ``failed`` (the leg carries an errorInfo) means the network ended it, whatever the type says.
    """
    if failed:
        return "system"
    if disconnect_type is None:
        return "unknown"
    kind = disconnect_type.lower()
    other = {Role.AGENT: "customer", Role.CUSTOMER: "agent"}.get(role)
    if kind == "client":
        # "client" is an API or app request: for either leg that means our side (agent or gcdial).
        return "agent" if role in (Role.AGENT, Role.CUSTOMER) else "unknown"
    if kind in _BY_SELF:
        return role.value if role is not Role.OTHER else "unknown"
    if kind in _BY_PEER:
        return other or "unknown"
    return "system"


def _event(
    kind: EventKind,
    conversation_id: str | None,
    participant: Mapping[str, Any],
    key: str,
    at: object,
) -> CallEvent:
    role = role_of(participant)
    disconnect = participant.get("disconnectType")
    disconnect_type = str(disconnect) if disconnect is not None else None
    error = ErrorInfo.from_participant(participant)
    pid = participant.get("id")
    return CallEvent(
        kind=kind,
        conversation_id=conversation_id,
        at=parse_time(at),
        role=role,
        participant_id=pid if isinstance(pid, str) else key,
        state=state_of(participant) or None,
        disconnect_type=disconnect_type if kind is EventKind.PARTICIPANT_DISCONNECTED else None,
        ended_by=(
            ended_by(role, disconnect_type, failed=error is not None)
            if kind is EventKind.PARTICIPANT_DISCONNECTED
            else None
        ),
        error=error if kind is EventKind.PARTICIPANT_DISCONNECTED else None,
        participant=participant,
    )


def _progress_kind(role: Role, state: str) -> EventKind:
    if role is Role.AGENT and state in _RINGING_STATES:
        return EventKind.AGENT_ALERTING
    if role is Role.AGENT and state == "connected":
        return EventKind.AGENT_CONNECTED
    if role is Role.CUSTOMER and state == "dialing":
        return EventKind.CUSTOMER_DIALING
    if role is Role.CUSTOMER and state in _RINGING_STATES:
        return EventKind.CUSTOMER_RINGING
    if role is Role.CUSTOMER and state == "connected":
        return EventKind.CUSTOMER_CONNECTED
    return EventKind.STATE_CHANGED


def _participant_events(
    conversation_id: str | None,
    key: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
) -> list[CallEvent]:
    old_state = state_of(before) if before is not None else "none"
    new_state = state_of(after)
    old_rank, new_rank = state_rank(old_state), state_rank(new_state)
    role = role_of(after)
    events: list[CallEvent] = []
    if new_rank >= _ENDED_RANK:
        if old_rank >= _ENDED_RANK:
            return events
        # A leg seen only after it ended still says it was connected (a gap, or a late follower).
        if old_rank < state_rank("connected") and after.get("connectedTime"):
            kind = _progress_kind(role, "connected")
            events.append(_event(kind, conversation_id, after, key, after.get("connectedTime")))
        events.append(
            _event(
                EventKind.PARTICIPANT_DISCONNECTED,
                conversation_id,
                after,
                key,
                after.get("endTime"),
            )
        )
        return events
    if new_state != old_state:
        if new_state == "connected":
            at = after.get("connectedTime")
        elif before is None:
            at = after.get("startTime")
        else:
            at = None
        events.append(_event(_progress_kind(role, new_state), conversation_id, after, key, at))
    was_held = bool(before.get("held")) if before is not None else False
    if bool(after.get("held")) != was_held:
        kind = EventKind.HELD if after.get("held") else EventKind.RESUMED
        events.append(_event(kind, conversation_id, after, key, None))
    return events


def events_between(previous: Snapshot | None, snapshot: Snapshot) -> list[CallEvent]:
    """The events that lead from ``previous`` (None: nothing known yet) to ``snapshot``.

    Duplicate or stale snapshots yield no events; pass the result of :func:`merge` as the next
    ``previous`` so that state only ever moves forward.
    """
    merged = merge(previous, snapshot)
    conversation_id = _conversation_id(merged)
    before = participants_of(previous)
    after = participants_of(merged)
    events: list[CallEvent] = []
    for key, participant in after.items():
        events.extend(_participant_events(conversation_id, key, before.get(key), participant))
    events = _in_time_order([_ended_with_peer(event, after) for event in events])
    wrapups = [
        _wrapup_event(conversation_id, key, participant)
        for key, participant in after.items()
        if _final_wrapup(participant) is not None and _final_wrapup(before.get(key) or {}) is None
    ]
    if is_over(merged) and not is_over(previous):
        ends = [e.at for e in events if e.at is not None] + [
            t for p in after.values() if (t := parse_time(p.get("endTime"))) is not None
        ]
        events.append(
            CallEvent(
                kind=EventKind.CALL_ENDED,
                conversation_id=conversation_id,
                at=max(ends) if ends else None,
            )
        )
    return events + wrapups


def _final_wrapup(participant: Mapping[str, Any]) -> Wrapup | None:
    """The agent's wrap-up once final (a provisional code given during the call is not)."""
    if role_of(participant) is not Role.AGENT:
        return None
    wrapup = Wrapup.from_participant(participant)
    return wrapup if wrapup is not None and not wrapup.provisional else None


def _wrapup_event(
    conversation_id: str | None, key: str, participant: Mapping[str, Any]
) -> CallEvent:
    wrapup = _final_wrapup(participant)
    pid = participant.get("id")
    return CallEvent(
        kind=EventKind.WRAPUP,
        conversation_id=conversation_id,
        at=wrapup.at if wrapup is not None else None,
        role=Role.AGENT,
        participant_id=pid if isinstance(pid, str) else key,
        state=state_of(participant) or None,
        participant=participant,
        wrapup=wrapup,
    )


def conversation_of(events: Iterable[CallEvent]) -> dict[str, Any] | None:
    """The conversation as a call's events left it (each participant at its last view)."""
    state: dict[str, Any] | None = None
    for event in events:
        if event.participant:
            state = merge(state, {"id": event.conversation_id, "participants": [event.participant]})
    return state


def agent_wrapup(snapshot: Snapshot | None) -> Wrapup | None:
    """The call's final wrap-up (the agent participant's), if it has arrived."""
    for participant in participants_of(snapshot).values():
        wrapup = _final_wrapup(participant)
        if wrapup is not None:
            return wrapup
    return None


def wrapup_expected(snapshot: Snapshot | None, *, acd: bool, non_acd: bool = False) -> bool:
    """Whether a wrap-up is worth waiting for once the call is over.

    Only an agent who was connected does after-call work. ``acd``: the call was placed for a
    queue (the caller knows; an agent participant with a ``queue`` or ``queueId`` says so too);
    ``non_acd``: the setting for the UNCONFIRMED case of wrap-ups on calls without a queue.
    ``wrapupRequired`` on the agent's participant settles it either way.
    """
    for participant in participants_of(snapshot).values():
        if role_of(participant) is not Role.AGENT:
            continue
        if _final_wrapup(participant) is not None:
            return True
        if not participant.get("connectedTime") and state_of(participant) != "connected":
            continue
        required = participant.get("wrapupRequired")
        if isinstance(required, bool) and required:
            return True
        if acd or non_acd or participant.get("queueId") or participant.get("queue"):
            return True
    return False


def _ended_with_peer(event: CallEvent, participants: Mapping[str, Any]) -> CallEvent:
    """A leg ended by its peer whose leg failed was ended by the system, as that peer was."""
    if event.disconnect_type != "peer" or event.role not in (Role.AGENT, Role.CUSTOMER):
        return event
    other = Role.CUSTOMER if event.role is Role.AGENT else Role.AGENT
    peers = [p for p in participants.values() if role_of(p) is other]
    if not any(ErrorInfo.from_participant(p) is not None for p in peers):
        return event
    return replace(event, ended_by="system")


def _conversation_id(snapshot: Snapshot) -> str | None:
    cid = snapshot.get("id")
    return cid if isinstance(cid, str) else None


def _in_time_order(events: list[CallEvent]) -> list[CallEvent]:
    """Order by server time; an event without one keeps the time of the event before it."""
    keyed: list[tuple[dt.datetime, bool, int, CallEvent]] = []
    last = dt.datetime.min.replace(tzinfo=dt.UTC)
    for index, event in enumerate(events):
        if event.at is not None:
            last = event.at
        # At the same instant, the leg that caused the end comes before the one ended by its peer.
        follows_peer = event.ended_by is not None and event.disconnect_type == "peer"
        keyed.append((last, follows_peer, index, event))
    keyed.sort(key=lambda item: item[:3])
    return [item[3] for item in keyed]


def replay(snapshots: Iterable[Snapshot]) -> tuple[dict[str, Any] | None, list[CallEvent]]:
    """Fold snapshots in arrival order; return the final merged conversation and every event."""
    state: dict[str, Any] | None = None
    events: list[CallEvent] = []
    for snapshot in snapshots:
        events.extend(events_between(state, snapshot))
        state = merge(state, snapshot)
    return state, events
