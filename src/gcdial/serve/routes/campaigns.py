"""``/v1/campaigns``: upload a contact list (preview or create), list, read, act, report.

The page's Campaigns panel uses these handlers with its session; the report's download link is
``GET /v1/campaigns/{id}/report`` (it names the file to save).

(No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

import asyncio
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi import Path as FastApiPath
from fastapi.responses import Response

from gcdial.campaign.journal import Attempt, AttemptState
from gcdial.errors import JournalError
from gcdial.serve.campaign_calls import campaign_call_id
from gcdial.serve.campaign_form import CampaignForm, campaign_form
from gcdial.serve.campaign_views import wrapup_preview
from gcdial.serve.campaigns import read_upload
from gcdial.serve.cursor import decode_cursor, encode_cursor, filters_fingerprint, page_of
from gcdial.serve.models import (
    CampaignAttemptsPage,
    CampaignDetailResource,
    CampaignList,
    CampaignPreview,
    CampaignResource,
)
from gcdial.serve.params import CampaignId
from gcdial.serve.principal import Principal
from gcdial.serve.problems import ApiProblem
from gcdial.serve.routes.deps import Caller, Campaigns, Service, errors_with

__all__ = ["MAX_LISTED", "report_filename", "router"]

MAX_LISTED = 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

router = APIRouter(tags=["campaigns"])
_ERRORS = errors_with(e409="Not in a state that allows this")
Upload = Annotated[CampaignForm, Depends(campaign_form)]
ListFile = Annotated[UploadFile, File(description="The contact list (UTF-8 CSV)")]


def report_filename(name: str, campaign_id: CampaignId, fmt: str) -> str:
    """``<name>-<id>-report.<fmt>``, with anything but letters, digits, ``._-`` made ``_``."""
    stem = _UNSAFE.sub("_", name).strip("._") or "campaign"
    return f"{stem[:60]}-{campaign_id}-report.{fmt}"


def _may_upload(caller: Principal, form: CampaignForm) -> None:
    caller.need("campaigns")
    for agent in form.agents:
        caller.need_agent(agent, path="form:agents")


@router.get(
    "/v1/campaigns",
    response_model=CampaignList,
    responses=_ERRORS,
    summary="The newest campaigns this key may see, with their counts",
)
async def list_campaigns(
    caller: Caller,
    campaigns: Campaigns,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=200, description="The page size")] = MAX_LISTED,
    cursor: Annotated[
        str | None,
        Query(max_length=500, description="The previous page's `next`, as given"),
    ] = None,
) -> dict[str, Any]:
    """A page of campaigns, newest created first; ``next`` continues after it."""
    caller.need("campaigns")
    fingerprint = filters_fingerprint({"list": "campaigns", "owner": caller.owner_filter})
    key = await service.db(service.store.cursor_key)
    now = service.clock()
    before = decode_cursor(key, cursor, fingerprint, now=now) if cursor is not None else None

    def scan() -> tuple[list[dict[str, Any]], str | None]:
        found, more = page_of(
            campaigns.visible(caller.key), lambda m: (m.created_at, m.id), before, limit
        )
        nxt = (
            encode_cursor(key, (found[-1].created_at, found[-1].id), fingerprint, now=now)
            if more
            else None
        )
        return [campaigns.status(meta) for meta in found], nxt

    listed, nxt = await asyncio.to_thread(scan)
    return {"campaigns": listed, "next": nxt}


@router.post(
    "/v1/campaigns/preview",
    response_model=CampaignPreview,
    responses=_ERRORS,
    summary="Which rows of a contact list would be refused, and why; stores and dials nothing",
)
async def preview_campaign(
    caller: Caller, service: Service, file: ListFile, form: Upload
) -> dict[str, Any]:
    """The upload's dry run."""
    _may_upload(caller, form)
    data = await file.read()
    _, preview = await asyncio.to_thread(read_upload, data, form.settings, now=datetime.now(UTC))
    preview["wrapup"] = await wrapup_preview(service.client, form.settings)
    return preview


@router.post(
    "/v1/campaigns",
    status_code=201,
    response_model=CampaignResource,
    responses=_ERRORS,
    summary="Create a campaign from an uploaded CSV (multipart); nothing is dialed yet",
)
async def create_campaign(
    caller: Caller, campaigns: Campaigns, file: ListFile, form: Upload
) -> dict[str, Any]:
    """Keep the list and its settings; ``start`` dials."""
    _may_upload(caller, form)
    meta = await campaigns.create_from_upload(caller.key, await file.read(), form, file.filename)
    return await asyncio.to_thread(campaigns.status, meta)


@router.get("/v1/campaigns/{campaign_id}", response_model=CampaignResource, responses=_ERRORS)
async def get_campaign(
    campaign_id: CampaignId, caller: Caller, campaigns: Campaigns
) -> dict[str, Any]:
    """A campaign's state and counts."""
    caller.need("campaigns")
    return await asyncio.to_thread(campaigns.status, await campaigns.find(campaign_id, caller.key))


@router.get(
    "/v1/campaigns/{campaign_id}/detail",
    response_model=CampaignDetailResource,
    responses=_ERRORS,
    summary="A campaign with its agents, rate budget, calls per minute and deferred contacts",
)
async def campaign_detail(
    campaign_id: CampaignId, caller: Caller, campaigns: Campaigns
) -> dict[str, Any]:
    """The campaign's card, live while it runs."""
    caller.need("campaigns")
    meta = await campaigns.find(campaign_id, caller.key)
    return await campaigns.view(meta)


# An attempt's journal state as its call's status shows it (the filter speaks as /v1/calls does).
_STATUS_OF = {
    AttemptState.INTENT: "placing",
    AttemptState.ACCEPTED: "placed",
    AttemptState.ENDED: "placed",
    AttemptState.UNKNOWN: "unknown",
    AttemptState.NOT_SENT: "not_placed",
}


def _states(status: str) -> list[AttemptState]:
    return [state for state, shown in _STATUS_OF.items() if shown == status]


def _attempt_json(
    campaign_id: str, attempt: Attempt, line: int, external_id: str | None
) -> dict[str, Any]:
    return {
        "attemptId": attempt.id,
        "number": attempt.number,
        "status": _STATUS_OF[attempt.state],
        "agent": attempt.agent or attempt.agent_id,
        "contact": {"line": line, "externalId": external_id},
        "createdAt": attempt.created_at.isoformat(),
        "endedAt": attempt.ended_at.isoformat() if attempt.ended_at else None,
        "conversationId": attempt.conversation_id,
        "outcome": attempt.outcome,
        "detail": attempt.detail,
        "call": f"/v1/calls/{campaign_call_id(campaign_id, attempt.id)}",
    }


@router.get(
    "/v1/campaigns/{campaign_id}/attempts",
    response_model=CampaignAttemptsPage,
    responses=_ERRORS,
    summary="A campaign's dial attempts, newest first, a page at a time",
    description="Pass the answer's `next` as `cursor` for the next page (with the same "
    "filters). `status` and `outcome` read as for `GET /v1/calls`: `outcome` is the attempt's "
    "outcome, or its status while it has none.",
)
async def list_attempts(
    campaign_id: CampaignId,
    caller: Caller,
    campaigns: Campaigns,
    service: Service,
    agent: Annotated[
        str | None, Query(max_length=200, description="The agent (email or id) who was rung")
    ] = None,
    status: Annotated[str | None, Query(pattern="^(placing|placed|unknown|not_placed)$")] = None,
    outcome: Annotated[
        str | None,
        Query(
            pattern="^[a-z_]{1,40}$",
            description="The attempt's outcome, or its status while it has none",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="The page size")] = 100,
    cursor: Annotated[
        str | None,
        Query(max_length=500, description="The previous page's `next`, as given"),
    ] = None,
) -> dict[str, Any]:
    """A page of the campaign's attempts; ``next`` continues after it."""
    caller.need("campaigns")
    meta = await campaigns.find(campaign_id, caller.key)
    filters = {"list": "attempts", "campaign": meta.id, "agent": agent and agent.lower(),
               "status": status, "outcome": outcome}  # fmt: skip
    fingerprint = filters_fingerprint(filters)
    key = await service.db(service.store.cursor_key)
    now = service.clock()
    before = decode_cursor(key, cursor, fingerprint, now=now) if cursor is not None else None

    def read() -> list[dict[str, Any]]:
        opened = campaigns.journals.read(meta.id)
        if opened is None:
            return []  # not started yet: no attempt
        with opened as journal:
            found = journal.attempts.page(
                limit=limit + 1,
                before=int(before[0]) if before is not None else None,
                agent=agent,
                states=_states(status) if status is not None else None,
                outcome=outcome,
                outcome_states=_states(outcome) if outcome is not None else (),
            )
            contacts = {a.contact_id: journal.contacts.get(a.contact_id) for a in found}
        return [
            _attempt_json(
                meta.id, a, contacts[a.contact_id].line, contacts[a.contact_id].external_id
            )
            for a in found
        ]

    try:
        listed = await asyncio.to_thread(read)
    except JournalError as exc:
        raise ApiProblem(409, "journal_unusable", exc.message, hint=exc.hint) from None
    more = len(listed) > limit
    listed = listed[:limit]
    last = listed[-1]["attemptId"] if listed else 0
    # The position is the attempt's id (ids only grow, so new attempts never shift a page).
    nxt = encode_cursor(key, (float(last), str(last)), fingerprint, now=now) if more else None
    return {"attempts": listed, "next": nxt}


@router.post(
    "/v1/campaigns/{campaign_id}/{action}",
    response_model=CampaignResource,
    responses=_ERRORS,
    summary="start, pause, resume or stop a campaign",
)
async def campaign_action(
    campaign_id: CampaignId,
    action: Annotated[str, FastApiPath(pattern="^(start|pause|resume|stop)$")],
    caller: Caller,
    campaigns: Campaigns,
) -> dict[str, Any]:
    """Start, pause, resume or stop; a second supervisor's same action is a clear 409."""
    caller.need("campaigns")
    meta = await campaigns.find(campaign_id, caller.key)
    if action in ("start", "resume"):
        meta = await campaigns.start(meta)
    else:
        meta = await campaigns.halt(meta, "paused" if action == "pause" else "stopped")
    return await asyncio.to_thread(campaigns.status, meta)


@router.get(
    "/v1/campaigns/{campaign_id}/report",
    responses={
        **_ERRORS,
        200: {"content": {"text/csv": {}, "application/json": {}}, "description": "Report"},
    },
    response_class=Response,
)
async def campaign_report(
    campaign_id: CampaignId,
    caller: Caller,
    campaigns: Campaigns,
    format: Annotated[str, Query(pattern="^(csv|json)$")] = "csv",
) -> Response:
    """The report, named for saving (``<name>-<id>-report.<format>``)."""
    caller.need("campaigns")
    meta = await campaigns.find(campaign_id, caller.key)
    text = await asyncio.to_thread(campaigns.report, meta, format)
    filename = report_filename(meta.name, meta.id, format)
    return Response(
        text,
        media_type="application/json" if format == "json" else "text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
