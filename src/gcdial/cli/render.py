"""Human views of Genesys payloads: tables for a call's participants and for an agent.

rich is imported by the functions that build tables: ``call --wait`` needs only :func:`clock`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from gcdial.models import CallConversation, Participant, User, UserStation

_STATE_STYLES = {
    "connected": "green",
    "alerting": "yellow",
    "dialing": "yellow",
    "contacting": "yellow",
    "offering": "yellow",
    "disconnected": "dim",
    "terminated": "dim",
}


def clock(moment: datetime | None, *, millis: bool = False, zone: bool = False) -> str:
    """A timestamp as ``HH:MM:SS`` in UTC (the day is rarely in doubt for a live call).

    Every time gcdial shows is UTC, and says so: with ``zone`` the text ends in ``UTC``; without
    it the caller marks the column (a table header such as ``started (UTC)``).
    """
    if moment is None:
        return "-"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    text = moment.strftime("%H:%M:%S.%f")[:-3] if millis else moment.strftime("%H:%M:%S")
    return f"{text} UTC" if zone else text


def _who(participant: Participant) -> str:
    """The agent's name, else the participant's name, else the address dialed."""
    if participant.user is not None and (participant.user.name or participant.user.id):
        return participant.user.name or participant.user.id or "-"
    return participant.name or participant.address or "-"


def _why(participant: Participant) -> str:
    parts = []
    if participant.disconnect_type:
        parts.append(participant.disconnect_type)
    if participant.error_info is not None and participant.error_info.code:
        parts.append(participant.error_info.code)
    return " ".join(parts) or "-"


def _rank(participant: Participant) -> int:
    return 0 if participant.is_agent else 1 if participant.is_customer else 2


def conversation_table(conversation: CallConversation) -> Table:
    """One row per participant: role, who, state, times and why it ended (fits 80 columns)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=f"Call {conversation.id}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    times = ("started (UTC)", "connected (UTC)", "ended (UTC)")
    fixed = {"role", "state", *times}
    for name in ("role", "who", "state", *times, "ended how"):
        table.add_column(name, no_wrap=name in fixed, overflow="fold")
    for p in sorted(conversation.participants, key=_rank):
        state = p.state or "-"
        table.add_row(
            p.purpose or "-",
            _who(p),
            Text(state, style=_STATE_STYLES.get(state, "")),
            clock(p.start_time),
            clock(p.connected_time),
            clock(p.end_time),
            _why(p),
        )
    return table


def conversation_summary(conversation: CallConversation) -> str:
    """One line: is the call still going, and what each side is doing."""
    agent = conversation.agent_participant()
    customer = conversation.customer_participant()
    status = "ended" if conversation.is_over else "in progress"
    sides = []
    if agent is not None:
        sides.append(f"agent {agent.state or '?'}")
    if customer is not None:
        sides.append(f"customer {customer.state or '?'}")
    return f"Call {status}" + (f": {', '.join(sides)}" if sides else "")


def agent_table(
    user: User,
    *,
    verdict: str | None = None,
    presence: str | None = None,
    station: UserStation | None = None,
) -> Table:
    """An agent's profile, station, presence and (when known) whether a call can be placed now.

    ``presence`` and ``station`` are what a readiness check found, when the user record lacks them.
    """
    from rich.table import Table

    table = Table(show_header=False, title=user.label, title_justify="left")
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")  # an id folds on a narrow terminal, never cut
    if station is None and user.station is not None:
        station = user.station.dialing_station
    if presence is None and user.presence is not None:
        presence = user.presence.system_presence
    routing = user.routing_status.status if user.routing_status is not None else None
    rows = [
        ("id", user.id),
        ("name", user.name or "-"),
        ("email", user.email or "-"),
        ("state", user.state or "-"),
        ("station", (station.name or station.id or "yes") if station is not None else "none"),
        ("presence", presence or "-"),
        ("routing status", routing or "-"),
    ]
    if verdict is not None:
        rows.append(("ready to dial", verdict))
    for name, value in rows:
        table.add_row(name, value or "-")
    return table
