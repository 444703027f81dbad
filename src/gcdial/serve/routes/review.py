"""What needs a person: ``/v1/review`` (the page's Review panel), a verdict on a call, a
campaign's review list, its attempts' verdicts and the reassignment of pinned contacts.

The work is :class:`gcdial.serve.review.Reviews`'. Included before the campaigns router, whose
``/v1/campaigns/{id}/{action}`` would otherwise take ``reassign``.

(No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi import Path as FastApiPath
from fastapi.responses import JSONResponse, Response

from gcdial.serve.models import CallResource, ReviewList
from gcdial.serve.params import CallId, CampaignId
from gcdial.serve.problems import ApiProblem
from gcdial.serve.review import (
    CampaignReview,
    CampaignVerdictResult,
    ReassignRequest,
    ReassignResult,
    VerdictRequest,
)
from gcdial.serve.routes.calls import key_names, with_progress
from gcdial.serve.routes.deps import Caller, Campaigns, ReviewDesk, Service, errors_with
from gcdial.serve.store import AuditEntry, Event

__all__ = ["router"]

_KEY_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))
_AUDIT_SCAN = 100_000

router = APIRouter(tags=["review"])
_CONFLICT = errors_with(e409="Already decided, or the campaign is running")


@router.get(
    "/v1/review",
    response_model=ReviewList,
    responses=_CONFLICT,
    summary="Calls of unknown outcome with their evidence, and campaigns with something to review",
)
async def review_list(caller: Caller, service: Service, reviews: ReviewDesk) -> dict[str, Any]:
    """The service's calls of unknown outcome (detail, events, audit), and the campaigns'
    attempts of unknown outcome and pinned contacts (with the campaigns scope)."""
    caller.need("watch")
    unknown = await reviews.unknown_calls(caller.key)
    # The store has no audit query by call: read it only when there is something to review.
    audit = await service.db(service.store.list_audit, limit=_AUDIT_SCAN) if unknown else []
    views = await with_progress(service, unknown)
    mine = [a for a in audit if a.call_id in {call.id for call in unknown}]
    names = await key_names(service, {a.api_key_id for a in mine})
    items = []
    for call, view in zip(unknown, views, strict=True):
        events = await service.db(service.store.events_after, 0, call_id=call.id, limit=100)
        items.append(
            {
                "call": view,
                "request": json.loads(call.request),
                "events": [_event_line(e) for e in events],
                "audit": [_audit_line(a, names) for a in mine if a.call_id == call.id],
            }
        )
    may_campaigns = reviews.campaigns is not None and caller.may("campaigns")
    campaigns = await reviews.campaigns_to_review(caller.key) if may_campaigns else []
    return {
        "unknown": items,
        "campaigns": campaigns,
        "canDial": caller.may("dial"),
        "canCampaigns": may_campaigns,
    }


@router.post(
    "/v1/calls/{call_id}/verdict",
    response_model=CallResource,
    responses=_CONFLICT,
    summary="Record what a person found about a call of unknown outcome (once)",
)
async def call_verdict(
    call_id: CallId,
    body: VerdictRequest,
    caller: Caller,
    reviews: ReviewDesk,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Optional; a retry with the same key and body replays the answer.",
        ),
    ] = None,
) -> Response:
    """Record a verdict once: a second one (another supervisor, a double click) is a 409."""
    caller.need("dial")
    if idempotency_key is not None and (
        not 1 <= len(idempotency_key) <= 255 or not set(idempotency_key) <= _KEY_CHARS
    ):
        raise ApiProblem(
            400,
            "idempotency_key_invalid",
            "The Idempotency-Key must be 1-255 printable ASCII characters.",
            path="header:Idempotency-Key",
        )
    answer = await reviews.call_verdict_once(caller.key, call_id, body, idempotency_key)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    return JSONResponse(answer.body, answer.status_code, headers=headers)


@router.get(
    "/v1/campaigns/{campaign_id}/review",
    response_model=CampaignReview,
    responses=_CONFLICT,
    summary="A campaign's attempts of unknown outcome (with evidence) and pinned contacts",
)
async def campaign_review(
    campaign_id: CampaignId, caller: Caller, campaigns: Campaigns, reviews: ReviewDesk
) -> dict[str, Any]:
    """One campaign's review list."""
    caller.need("campaigns")
    return await reviews.campaign_review(await campaigns.find(campaign_id, caller.key))


@router.post(
    "/v1/campaigns/{campaign_id}/attempts/{attempt_id}/verdict",
    response_model=CampaignVerdictResult,
    responses=_CONFLICT,
    summary="Record a verdict on a campaign attempt of unknown outcome (campaign paused)",
)
async def campaign_verdict(
    campaign_id: CampaignId,
    attempt_id: Annotated[int, FastApiPath(ge=1, le=2**62)],
    body: VerdictRequest,
    caller: Caller,
    campaigns: Campaigns,
    reviews: ReviewDesk,
) -> dict[str, Any]:
    """The verdict goes into the campaign's journal, its record."""
    caller.need("campaigns")
    meta = await campaigns.find(campaign_id, caller.key)
    return await reviews.campaign_verdict(caller.key, meta, attempt_id, body)


@router.post(
    "/v1/campaigns/{campaign_id}/reassign",
    response_model=ReassignResult,
    responses=_CONFLICT,
    summary="Give contacts pinned to an agent to another agent or to any (campaign paused)",
)
async def reassign(
    campaign_id: CampaignId,
    body: ReassignRequest,
    caller: Caller,
    campaigns: Campaigns,
    reviews: ReviewDesk,
) -> dict[str, Any]:
    """Move pinned contacts."""
    caller.need("campaigns")
    meta = await campaigns.find(campaign_id, caller.key)
    return await reviews.reassign(caller.key, meta, body)


def _event_line(event: Event) -> dict[str, Any]:
    data = json.loads(event.data)
    return {
        "id": event.id,
        "type": event.type,
        "at": dt.datetime.fromtimestamp(event.at, dt.UTC).isoformat(timespec="seconds"),
        "progress": data.get("progress"),
    }


def _audit_line(entry: AuditEntry, names: dict[str, str | None]) -> dict[str, Any]:
    return {
        "at": dt.datetime.fromtimestamp(entry.at, dt.UTC).isoformat(timespec="seconds"),
        "action": entry.action,
        "result": entry.result,
        "key": names.get(entry.api_key_id) or "(a revoked key)",
        "detail": entry.detail,
    }
