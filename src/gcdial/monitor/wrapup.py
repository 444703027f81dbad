"""What the agent recorded when wrapping a call up: the wrap-up code, its name and the notes.

A wrap-up belongs to the agent's participant (``wrapup: {code, name, notes, tags, durationSeconds,
endTime, provisional}``) and arrives *after* the call is over: the agent first does after-call
work. ACD calls (placed for a queue, ``callFromQueueId``) have one; whether a non-ACD call ever
carries one is UNCONFIRMED, so waiting for it there is the setting ``wrapup_non_acd``.

When the live frame is missed (the channel dropped, the wait ran out), conversation details are
the fallback: the agent's session has a ``wrapup`` segment with ``wrapUpCode`` and
``wrapUpNote``. Those carry the code's id only; :func:`list_wrapup_codes` gives the names.

This module is a leaf (no import from the rest of ``gcdial.monitor``): the events and the outcome
build on it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from gcdial._shared import DEFAULT_WRAPUP_TIMEOUT_S, WRAPUP_CODES_PATH
from gcdial.errors import GcdialError

if TYPE_CHECKING:
    from gcdial.monitor.channel import Transport

__all__ = [
    "DEFAULT_WRAPUP_TIMEOUT_S",
    "WRAPUP_CODES_PATH",
    "Wrapup",
    "WrapupWait",
    "details_wrapup",
    "list_wrapup_codes",
]

DETAILS_PATH: Final = "/api/v2/analytics/conversations/details/query"
CODES_PAGE_SIZE: Final = 100
CODES_MAX_PAGES: Final = 50
_AGENT_PURPOSES: Final = frozenset({"agent", "user"})


@dataclass(frozen=True)
class WrapupWait:
    """How to wait for a call's wrap-up once it is over: at most ``timeout_s``, and only when one
    is expected: ``acd`` (the call was placed for a queue) or ``non_acd`` (the setting for the
    UNCONFIRMED wrap-ups of calls without a queue)."""

    timeout_s: float = DEFAULT_WRAPUP_TIMEOUT_S
    acd: bool = False
    non_acd: bool = False

    def __post_init__(self) -> None:
        if not self.timeout_s >= 0:
            raise ValueError(f"wrap-up timeout must be 0 s or more, not {self.timeout_s!r}")


@dataclass(frozen=True)
class Wrapup:
    """The wrap-up of a call: ``code`` (the wrap-up code's id), ``name``, ``notes``, ``at`` (when
    it was given) and ``source``: ``live`` (a frame or GET) or ``details`` (conversation details,
    whose answer has no name: filled from the org's codes when they are known)."""

    code: str | None
    name: str | None = None
    notes: str | None = None
    tags: tuple[str, ...] = ()
    duration_s: float | None = None
    at: dt.datetime | None = None
    provisional: bool = False
    source: str = "live"

    @classmethod
    def from_participant(cls, participant: Mapping[str, Any]) -> Wrapup | None:
        """The participant's ``wrapup``, or None when it has none (or it is empty)."""
        raw = participant.get("wrapup")
        if not isinstance(raw, Mapping):
            return None
        code, name = _text(raw.get("code")), _text(raw.get("name"))
        if code is None and name is None:
            return None
        tags = raw.get("tags")
        duration = raw.get("durationSeconds")
        return cls(
            code=code,
            name=name,
            notes=_text(raw.get("notes")),
            tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
            duration_s=float(duration) if isinstance(duration, int | float) else None,
            at=_time(raw.get("endTime")) or _time(participant.get("endAcwTime")),
            provisional=raw.get("provisional") is True,
        )

    def named(self, names: Mapping[str, str]) -> Wrapup:
        """This wrap-up with its name filled from ``names`` (code id -> name) when it has none."""
        if self.name or self.code is None or self.code not in names:
            return self
        return replace(self, name=names[self.code])

    @property
    def label(self) -> str:
        """What a person reads: the name, else the code."""
        return self.name or self.code or "?"

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape gcdial prints and serves: ``{code, name, notes, at, source}``."""
        return {
            "code": self.code,
            "name": self.name,
            "notes": self.notes,
            "at": _iso(self.at),
            "source": self.source,
        }


def is_agent(participant: Mapping[str, Any]) -> bool:
    """Whether a (conversation or details) participant is the agent's."""
    purpose = participant.get("purpose")
    return isinstance(purpose, str) and purpose.lower() in _AGENT_PURPOSES


def details_wrapup(conversation: Mapping[str, Any]) -> Wrapup | None:
    """The wrap-up found in one conversation of a details answer (the agent's wrap-up segment)."""
    participants = conversation.get("participants")
    if not isinstance(participants, list):
        return None
    for participant in participants:
        if not isinstance(participant, Mapping) or not is_agent(participant):
            continue
        sessions = participant.get("sessions")
        for session in sessions if isinstance(sessions, list) else []:
            segments = session.get("segments") if isinstance(session, Mapping) else None
            for segment in segments if isinstance(segments, list) else []:
                if not isinstance(segment, Mapping):
                    continue
                code = _text(segment.get("wrapUpCode"))
                if code is None:
                    continue
                return Wrapup(
                    code=code,
                    notes=_text(segment.get("wrapUpNote")),
                    at=_time(segment.get("segmentEnd")),
                    source="details",
                )
    return None


def details_body(conversation_id: str, around: dt.datetime) -> dict[str, Any]:
    """The details query for one conversation (its id filter), in a day's interval around it."""
    start = (around - dt.timedelta(hours=12)).astimezone(dt.UTC)
    end = (around + dt.timedelta(hours=12)).astimezone(dt.UTC)
    return {
        "interval": f"{_iso(start)}/{_iso(end)}",
        "order": "asc",
        "orderBy": "conversationStart",
        "paging": {"pageSize": 25, "pageNumber": 1},
        "conversationFilters": [
            {
                "type": "and",
                "predicates": [
                    {
                        "type": "dimension",
                        "dimension": "conversationId",
                        "operator": "matches",
                        "value": conversation_id,
                    }
                ],
            }
        ],
    }


async def fetch_details_wrapup(
    transport: Transport, conversation_id: str, around: dt.datetime
) -> Wrapup | None:
    """One details query for the call's wrap-up; None when it has none (yet) or the query fails
    (a fallback never turns a known outcome into an error)."""
    try:
        response = await transport.request(
            "POST", DETAILS_PATH, json=details_body(conversation_id, around), idempotent=True
        )
        data = response.json()
    except (GcdialError, ValueError):
        return None
    raw = data.get("conversations") if isinstance(data, Mapping) else None
    for conversation in raw if isinstance(raw, list) else []:
        if isinstance(conversation, Mapping) and conversation.get("conversationId") == (
            conversation_id
        ):
            return details_wrapup(conversation)
    return None


async def list_wrapup_codes(transport: Transport) -> dict[str, str]:
    """The org's wrap-up codes, id -> name (``GET /api/v2/routing/wrapupcodes``, every page)."""
    codes: dict[str, str] = {}
    for page in range(1, CODES_MAX_PAGES + 1):
        response = await transport.request(
            "GET",
            WRAPUP_CODES_PATH,
            params={"pageSize": str(CODES_PAGE_SIZE), "pageNumber": str(page)},
            idempotent=True,
        )
        data = response.json()
        entities = data.get("entities") if isinstance(data, Mapping) else None
        if not isinstance(entities, list):
            break
        for entity in entities:
            if isinstance(entity, Mapping):
                code_id, name = _text(entity.get("id")), _text(entity.get("name"))
                if code_id is not None:
                    codes[code_id] = name or code_id
        count = data.get("pageCount")
        if not entities or (isinstance(count, int) and page >= count):
            break
    return codes


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
