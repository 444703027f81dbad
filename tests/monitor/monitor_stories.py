"""Hand-written CallConversation snapshot sequences shaped like the emulator's calls (design.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

T0 = dt.datetime(2026, 11, 25, 8, 49, 3, 123000, tzinfo=dt.UTC)
AGENT_ID = "11111111-1111-4111-8111-111111111111"


def ts(seconds: float) -> str:
    """The wire timestamp ``seconds`` after T0."""
    moment = T0 + dt.timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def agent(state: str, **extra: Any) -> dict[str, Any]:
    """The agent participant in ``state``."""
    return {
        "id": "p-agent",
        "purpose": "agent",
        "state": state,
        "direction": "outbound",
        "user": {"id": AGENT_ID, "name": "Alice"},
        "startTime": ts(0),
        **extra,
    }


def customer(state: str, purpose: str = "external", **extra: Any) -> dict[str, Any]:
    """The customer participant in ``state``."""
    return {
        "id": "p-customer",
        "purpose": purpose,
        "state": state,
        "direction": "outbound",
        "address": "tel:+14155550100",
        **extra,
    }


def conv(*participants: dict[str, Any], cid: str = "c-1") -> dict[str, Any]:
    """A CallConversation with these participants."""
    return {
        "id": cid,
        "participants": list(participants),
        "recordingState": "none",
        "selfUri": f"/api/v2/conversations/calls/{cid}",
    }


def story(nn: int, *, purpose: str = "external") -> list[dict[str, Any]]:
    """The snapshots a call to a number ending in ``nn`` produces, in order (design.md rule)."""
    a_conn = {"connectedTime": ts(2)}
    c = {"purpose": purpose, "startTime": ts(2)}
    if nn < 50:
        talk_end = 2 + 4 + 10 + nn
        c_conn = {**c, "connectedTime": ts(6)}
        return [
            conv(agent("alerting")),
            conv(agent("connected", **a_conn), customer("dialing", **c)),
            conv(agent("connected", **a_conn), customer("connected", **c_conn)),
            conv(
                agent("connected", **a_conn),
                customer("disconnected", **c_conn, endTime=ts(talk_end), disconnectType="endpoint"),
            ),
            conv(
                agent("disconnected", **a_conn, endTime=ts(talk_end), disconnectType="peer"),
                customer("disconnected", **c_conn, endTime=ts(talk_end), disconnectType="endpoint"),
            ),
        ]
    if nn >= 90:
        rejected = nn >= 95
        end = 2 if rejected else 15
        return [
            conv(agent("alerting")),
            conv(
                agent(
                    "disconnected",
                    endTime=ts(end),
                    disconnectType="client" if rejected else "timeout",
                )
            ),
        ]
    leg_end, dtype, code = {
        5: (2 + 30, "timeout", None),
        6: (2 + 2, "peer", "error.ininedgecontrol.remote.busy"),
        7: (2, "error", "error.ininedgecontrol.remote.address.invalid"),
        8: (2 + 3, "transport.failure", "error.ininedgecontrol.network.failure"),
    }[nn // 10]
    error: dict[str, Any] = (
        {"errorInfo": {"code": code, "message": f"{code} happened"}} if code else {}
    )
    ended = customer("disconnected", **c, endTime=ts(leg_end), disconnectType=dtype, **error)
    return [
        conv(agent("alerting")),
        conv(agent("connected", **a_conn), customer("dialing", **c)),
        conv(agent("connected", **a_conn), ended),
        conv(agent("disconnected", **a_conn, endTime=ts(leg_end), disconnectType="peer"), ended),
    ]


EXPECTED_KIND = {
    range(0, 50): "answered",
    range(50, 60): "no_answer",
    range(60, 70): "busy",
    range(70, 80): "invalid_number",
    range(80, 90): "unreachable",
    range(90, 95): "agent_no_answer",
    range(95, 100): "agent_rejected",
}


def expected_kind(nn: int) -> str:
    """The outcome design.md promises for a number ending in ``nn``."""
    return next(kind for span, kind in EXPECTED_KIND.items() if nn in span)
