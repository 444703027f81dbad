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

from gcdial.serve.campaign_form import CampaignForm, campaign_form
from gcdial.serve.campaign_views import wrapup_preview
from gcdial.serve.campaigns import read_upload
from gcdial.serve.models import (
    CampaignDetailResource,
    CampaignList,
    CampaignPreview,
    CampaignResource,
)
from gcdial.serve.params import CampaignId
from gcdial.serve.principal import Principal
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
async def list_campaigns(caller: Caller, campaigns: Campaigns) -> dict[str, Any]:
    """Up to ``MAX_LISTED`` campaigns, newest first."""
    caller.need("campaigns")

    def scan() -> list[dict[str, Any]]:
        return [campaigns.status(meta) for meta in campaigns.recent(caller.key, MAX_LISTED)]

    return {"campaigns": await asyncio.to_thread(scan)}


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
    return await asyncio.to_thread(campaigns.status, campaigns.load(campaign_id, caller.key))


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
    meta = campaigns.load(campaign_id, caller.key)
    return await asyncio.to_thread(campaigns.detail, meta, campaigns.live(meta.id))


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
    meta = campaigns.load(campaign_id, caller.key)
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
    meta = campaigns.load(campaign_id, caller.key)
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
