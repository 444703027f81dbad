"""What the API shows of a call and of its events: ``CallResource``'s JSON, the events as every
reader gets them, and where a call's event stream ends.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from gcdial.errors import InvalidPhoneNumberError
from gcdial.phone import to_e164
from gcdial.serve.store import CallRecord

__all__ = ["TERMINAL_EVENTS", "call_json", "ends_call_stream", "iso", "public_event"]

TERMINAL_EVENTS = frozenset({"call.ended", "call.unknown", "call.not_placed", "call.refused"})


def ends_call_stream(type: str, data: dict[str, Any]) -> bool:
    """Whether a call's event stream ends with this event: its last verdict, or its end when no
    wrap-up is to come (else ``call.wrapup``, which comes even when the wrap-up never did)."""
    if type == "call.ended":
        return not data.get("wrapupExpected")
    return type in TERMINAL_EVENTS or type == "call.wrapup"


def iso(epoch: float) -> str:
    """An epoch time as ISO 8601 UTC with milliseconds."""
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def call_json(call: CallRecord) -> dict[str, Any]:
    """The API's JSON for a call (``CallResource``)."""
    origin = json.loads(call.origin or "{}")
    request = json.loads(call.request or "{}")
    sent = request.get("to")
    attributes = request.get("attributes")
    return {
        "id": call.id,
        "status": call.status,
        "agent": call.agent,
        "agentId": call.agent_id,
        "to": call.to,
        "toAsSent": sent if isinstance(sent, str) else None,
        "callerId": _caller_id(request),
        "label": request.get("label"),
        "attributes": attributes if isinstance(attributes, dict) else {},
        "conversationId": call.conversation_id,
        "outcome": call.outcome,
        "ended": call.outcome is not None or call.status in ("not_placed", "refused"),
        "detail": call.detail,
        "createdAt": iso(call.created_at),
        "updatedAt": iso(call.updated_at),
        "source": call.source,
        "campaign": (
            {"id": call.campaign_id, "name": origin.get("campaignName")}
            if call.campaign_id is not None
            else None
        ),
        "attemptId": call.attempt_id,
        "contact": origin.get("contact"),
        "wrapup": json.loads(call.wrapup) if call.wrapup else None,
        "warnings": origin.get("warnings") or [],
        "overrideReason": _override_reason(request),
        "links": {"self": f"/v1/calls/{call.id}", "events": f"/v1/calls/{call.id}/events"},
    }


def _override_reason(request: dict[str, Any]) -> str | None:
    override = request.get("override")
    reason = override.get("reason") if isinstance(override, dict) else None
    return reason if isinstance(reason, str) else None


def _caller_id(request: dict[str, Any]) -> str | None:
    """The caller id the call was placed with, in E.164 (the request keeps it as sent; it was
    checked before the claim, so a failure here means a row from before the check)."""
    sent = request.get("callerId")
    if not isinstance(sent, str):
        return None
    try:
        return to_e164(sent, default_country=request.get("defaultCountry") or "US")
    except InvalidPhoneNumberError:
        return None


def public_event(data: dict[str, Any]) -> dict[str, Any]:
    """An event as every reader gets it, SSE and webhooks alike: without the internal id of
    the key that placed the call (kept in the log only to decide who may see it)."""
    return {name: value for name, value in data.items() if name != "apiKeyId"}
