"""The step a call is at, named as people say it, and its talk time, from progress events.

One table for every reader: the service puts the step in each ``call.progress`` event (SSE and
webhooks alike), and ``GET /v1/calls?expand=progress`` computes it for a listed call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["STEPS", "call_view", "step_of"]

# Monitor event kind -> the step (issue 12: agent ringing, dialing, customer ringing, talking).
STEPS: Mapping[str, str] = {
    "agent_alerting": "agent ringing",
    "agent_connected": "dialing",
    "customer_dialing": "dialing",
    "customer_ringing": "customer ringing",
    "customer_connected": "talking",
    "held": "on hold",
    "resumed": "talking",
    "call_ended": "ended",
}


def step_of(progress: Mapping[str, Any]) -> str | None:
    """The step a progress event moves the call to, or None when it does not change it."""
    kind = progress.get("event")
    return STEPS.get(kind) if isinstance(kind, str) else None


def _parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def call_view(
    call: Mapping[str, Any], progress: Iterable[Mapping[str, Any]], key_name: str | None
) -> dict[str, Any]:
    """The API's call JSON plus the page's fields: step, talk time, the key that placed it."""
    step = {"placing": "placing", "placed": "agent ringing"}.get(str(call.get("status")))
    talk_from: dt.datetime | None = None
    talk_to: dt.datetime | None = None
    for event in progress:
        step = step_of(event) or step
        at = _parse_time(event.get("at"))
        if event.get("event") == "customer_connected" and talk_from is None:
            talk_from = at
        if (
            talk_from is not None
            and talk_to is None
            and event.get("event")
            in (
                "participant_disconnected",
                "call_ended",
            )
        ):
            talk_to = at
    if call.get("ended"):
        step = "ended"
    talk = (talk_to - talk_from).total_seconds() if talk_from and talk_to else None
    return {
        **call,
        "step": step,
        "talkSeconds": round(talk, 1) if talk is not None and talk >= 0 else None,
        "talkStartedAt": talk_from.isoformat() if talk_from else None,
        "keyName": key_name,
    }
