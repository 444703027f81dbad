"""What a running campaign shows: events as they happen and a snapshot for a live display.

The runner calls its observer with a :class:`CampaignEvent` for every step worth telling (a call
placed, its outcome, a contact skipped, an agent excluded...). :class:`Progress` is the state a
display draws from: counts, every agent's current call, the rate budget.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "AgentActivity",
    "AgentView",
    "AttemptHook",
    "AttemptUpdate",
    "BudgetView",
    "CampaignEvent",
    "Observer",
    "Progress",
]


class AgentActivity(StrEnum):
    """What an agent of the pool is doing."""

    IDLE = "idle"
    DIALING = "dialing"  # the create-call request is on its way
    RINGING_AGENT = "ringing agent"
    RINGING_CUSTOMER = "ringing customer"
    TALKING = "talking"
    WRAPPING_UP = "ending"
    RETIRED = "retired"


@dataclass
class AgentView:
    """One agent's line in the display."""

    id: str
    label: str
    activity: AgentActivity = AgentActivity.IDLE
    phone: str | None = None
    since: float = field(default_factory=time.monotonic)
    calls: int = 0
    note: str | None = None  # why it was retired

    def set(self, activity: AgentActivity, phone: str | None = None) -> None:
        """Move to ``activity`` (keeping the phone unless given or idle)."""
        self.activity = activity
        if phone is not None or activity in (AgentActivity.IDLE, AgentActivity.RETIRED):
            self.phone = phone
        self.since = time.monotonic()


@dataclass(frozen=True)
class BudgetView:
    """The shared request budget as last reported by the API."""

    remaining: int | None
    limit: int | None
    paused_s: float
    rate_limited: int
    # The windows that ended, as the budget lived them: (window, requests sent, seconds callers
    # were held at its end waiting for the reset). Empty for a budget that keeps no history.
    windows: tuple[tuple[int, int, float], ...] = ()


@dataclass(frozen=True)
class CampaignEvent:
    """One thing that happened; ``data`` is JSON-ready (``--json`` prints it as one line)."""

    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON line for this event."""
        return {"event": self.kind, **self.data, "message": self.message}


Observer = Callable[[CampaignEvent], None]


@dataclass(frozen=True)
class AttemptUpdate:
    """One step of one attempt, for whoever shows each attempt as a call (``gcdial serve``).

    ``step``: ``dialing`` (the intent is journaled, the create-call is about to leave),
    ``placed`` (accepted, or found in flight at resume: ``conversation_id`` set), ``progress``
    (a monitor event, ``progress`` its JSON), then one of ``outcome`` (ended: ``outcome``),
    ``unknown`` (may have rung: for a person), ``not_placed`` (provably never rang) or ``refused``
    (Genesys or the data refused it; nothing rang). ``external_id`` is the contact's key.
    """

    attempt: int
    step: str
    line: int
    phone: str
    external_id: str | None = None
    agent_id: str | None = None
    agent: str | None = None
    conversation_id: str | None = None
    progress: dict[str, Any] | None = None
    outcome: str | None = None
    detail: str | None = None
    wrapup: dict[str, Any] | None = None
    """With ``outcome``: the agent's wrap-up (``{code, name, notes, at, source}``), if one came."""


AttemptHook = Callable[[AttemptUpdate], None]


@dataclass
class Progress:
    """A running campaign at a glance; refreshed by the runner, read by displays."""

    name: str = ""
    total: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_outcome: Counter[str] = field(default_factory=Counter)
    by_disposition: Counter[str] = field(default_factory=Counter)  # wrap-up name -> calls
    wrapups_missing: int = 0
    placed: int = 0
    refused: int = 0
    unknown: int = 0
    agents: dict[str, AgentView] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)  # agent as given -> why left out
    next_due: datetime | None = None
    budget: BudgetView | None = None
    phase: str = "starting"
    started: float = field(default_factory=time.monotonic)

    @property
    def settled(self) -> int:
        """Contacts finished one way or another (done, skipped, unknown)."""
        return sum(self.by_status.get(s, 0) for s in ("done", "skipped", "unknown"))

    @property
    def live_calls(self) -> int:
        """Agents with a call in progress."""
        busy = (AgentActivity.IDLE, AgentActivity.RETIRED)
        return sum(1 for a in self.agents.values() if a.activity not in busy)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the last line of ``--json``)."""
        return {
            "campaign": self.name,
            "contacts": self.total,
            "settled": self.settled,
            "by_status": dict(sorted(self.by_status.items())),
            "by_outcome": dict(sorted(self.by_outcome.items())),
            "calls_placed": self.placed,
            "refused": self.refused,
            "unknown": self.unknown,
            "by_disposition": dict(sorted(self.by_disposition.items())),
            "wrapups_missing": self.wrapups_missing,
        }
