"""The one definition of "ready": may a call be placed for this agent now?

Every reader asks here: ``gcdial agent show``, ``GET /v1/agents``, the page, campaign previews
and pools, and the dial itself. Before this module each had its own idea (the CLI said "yes" for
an agent the service called not ready, and a campaign dialed through her), so the same agent
must get the same verdict and the same reason wherever it is shown.

An agent is ready when they are active, have a phone station, and their presence and routing
status are ones the policy accepts. The policy is a setting (``ready_presences``,
``ready_routing_statuses``), because orgs differ: some let agents on queue take outbound calls,
some only those "Available". Genesys' casing varies, so names compare case-insensitively.
Pure functions, no I/O: :mod:`gcdial.agents` fetches what they judge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ANY",
    "DEFAULT_READY_PRESENCES",
    "DEFAULT_READY_ROUTING_STATUSES",
    "READY",
    "Readiness",
    "ReadinessPolicy",
    "judge",
    "parse_names",
]

ANY: Final = "any"
"""A policy list of just ``any`` accepts every value (and an unknown one)."""

DEFAULT_READY_PRESENCES: Final = ("AVAILABLE", "ON_QUEUE")
# OFF_QUEUE and IDLE: not handling an ACD interaction. INTERACTING, COMMUNICATING (on a non-ACD
# call) and NOT_RESPONDING mean the phone is taken or unattended.
DEFAULT_READY_ROUTING_STATUSES: Final = ("IDLE", "OFF_QUEUE")

_PEOPLE_PAGE: Final = "Admin > People"
_STATION_PAGE: Final = "Admin > Telephony > Stations"


def parse_names(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"available, On Queue"`` -> ``("AVAILABLE", "ON_QUEUE")``; ``"any"`` -> ``("any",)``.

    Raises ValueError for an empty list, so that a typo never silently accepts nobody.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(
        dict.fromkeys(i.strip().upper().replace(" ", "_").replace("-", "_") for i in items)
    )
    names = tuple(n for n in names if n)
    if not names:
        raise ValueError("the list is empty")
    if ANY.upper() in names:
        return (ANY,)
    return names


@dataclass(frozen=True, slots=True)
class ReadinessPolicy:
    """Which presences and routing statuses let a call be placed (upper-case names, or ``any``).

    An unknown value (not readable, e.g. no permission) is accepted: presence is reported by
    Genesys on a best-effort basis, and refusing every call when it is missing would stop all
    dialing for an org that never granted the presence permission. The verdict says so in a note.
    """

    presences: tuple[str, ...] = DEFAULT_READY_PRESENCES
    routing_statuses: tuple[str, ...] = DEFAULT_READY_ROUTING_STATUSES

    def accepts_presence(self, presence: str | None) -> bool:
        """Whether ``presence`` (any casing, or None for unknown) lets a call go."""
        return _accepts(self.presences, presence)

    def accepts_routing(self, status: str | None) -> bool:
        """Whether the routing ``status`` (any casing, or None for unknown) lets a call go."""
        return _accepts(self.routing_statuses, status)


def _accepts(allowed: tuple[str, ...], value: str | None) -> bool:
    if value is None or allowed == (ANY,):
        return True
    return value.strip().upper().replace(" ", "_") in allowed


@dataclass(frozen=True, slots=True)
class Readiness:
    """The verdict: ``reason`` is a stable code (None when ready), ``problem`` what is wrong and
    ``hint`` what to fix where; ``notes`` are remarks that do not stop a call."""

    ready: bool
    reason: str | None = None
    problem: str | None = None
    hint: str | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """The verdict as ``agent show --json`` and ``GET /v1/agents`` give it."""
        return {
            "ready": self.ready,
            "reason": self.reason,
            "problem": self.problem,
            "notes": list(self.notes),
        }


READY: Final = Readiness(True)
"""The verdict for an agent with nothing against them."""


def judge(
    who: str,
    *,
    active: bool,
    state: str | None,
    has_station: bool,
    presence: str | None,
    routing_status: str | None,
    policy: ReadinessPolicy,
) -> Readiness:
    """The verdict for one agent; the checks in the order a person would fix them."""
    if not active:
        return Readiness(
            False,
            "inactive",
            f"Agent {who} is not active (state {state or 'unknown'}), so Genesys Cloud will not "
            "place calls for them.",
            f"Reactivate the user under {_PEOPLE_PAGE} > {who} (More > Activate), or dial for "
            "another agent.",
        )
    if not has_station:
        return Readiness(
            False,
            "no_station",
            f"Agent {who} has no phone station associated, so the call would fail with "
            "conversation.error.no.user.station (or never ring).",
            f"Have {who} select a phone in Genesys Cloud (the phone selector in the Calls "
            f"panel), or give them a default station under {_PEOPLE_PAGE} > {who} > Phone; "
            f"stations themselves are managed under {_STATION_PAGE}. A WebRTC phone must also "
            "allow placing calls with another app.",
        )
    notes: list[str] = []
    if presence is None:
        notes.append("presence unknown (no permission to read it?)")
    elif not policy.accepts_presence(presence):
        return Readiness(
            False,
            "presence",
            f"Agent {who} is {presence.strip().upper()}, a presence the readiness policy does "
            f"not accept ({', '.join(policy.presences)}).",
            f"Wait until {who} is {' or '.join(policy.presences)}, or change the setting "
            "ready_presences (GCDIAL_READY_PRESENCES).",
        )
    if routing_status is not None and not policy.accepts_routing(routing_status):
        return Readiness(
            False,
            "routing_status",
            f"Agent {who} has routing status {routing_status.strip().upper()}, which the "
            f"readiness policy does not accept ({', '.join(policy.routing_statuses)}).",
            f"Wait until {who} is free, or change the setting ready_routing_statuses "
            "(GCDIAL_READY_ROUTING_STATUSES).",
        )
    return Readiness(True, notes=tuple(notes))
