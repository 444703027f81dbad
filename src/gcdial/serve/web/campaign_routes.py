"""The page's Campaigns panel: list, preview an upload, create, act, detail, download the report.

The same ``CampaignManager`` and checks as ``/v1/campaigns`` (the preview and create go through
``read_upload``), authenticated by the session cookie; actions need the CSRF token and the
``campaigns`` scope.

(No ``from __future__ import annotations``: FastAPI reads the route signatures, which use names
local to ``campaign_router``.)
"""

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Header, Request, UploadFile
from fastapi.responses import Response

from gcdial.serve.campaign_form import CampaignForm, campaign_form
from gcdial.serve.campaigns import CampaignManager, read_upload
from gcdial.serve.problems import ApiProblem
from gcdial.serve.store import ApiKeyRecord
from gcdial.serve.web.session import Session

__all__ = ["campaign_router", "report_filename"]

MAX_LISTED = 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

SignedIn = Callable[[Request], Awaitable[tuple[Session, ApiKeyRecord]]]
Act = Callable[[tuple[Session, ApiKeyRecord], str | None, str], ApiKeyRecord]


def report_filename(name: str, campaign_id: str, fmt: str) -> str:
    """``<name>-<id>-report.<fmt>``, with anything but letters, digits, ``._-`` made ``_``."""
    stem = _UNSAFE.sub("_", name).strip("._") or "campaign"
    return f"{stem[:60]}-{campaign_id}-report.{fmt}"


def campaign_router(campaigns: CampaignManager | None, signed_in: SignedIn, act: Act) -> APIRouter:
    """The page's campaign routes; ``signed_in`` and ``act`` are the page's session checks."""
    router = APIRouter(include_in_schema=False)
    Viewer = Annotated[tuple[Session, ApiKeyRecord], Depends(signed_in)]
    Csrf = Annotated[str | None, Header(alias="X-CSRF-Token")]
    Upload = Annotated[CampaignForm, Depends(campaign_form)]

    def manager_for(key: ApiKeyRecord) -> CampaignManager:
        if campaigns is None:
            raise ApiProblem(404, "not_found", "This service runs no campaigns.")
        if "campaigns" not in key.scopes and "admin" not in key.scopes:
            raise ApiProblem(403, "forbidden", "Your API key lacks the 'campaigns' scope.")
        return campaigns

    def may_dial_for(key: ApiKeyRecord, agents: tuple[str, ...]) -> None:
        for agent in agents:
            if key.agents and agent.lower() not in key.agents:
                raise ApiProblem(
                    403,
                    "agent_not_allowed",
                    f"Your key may not dial for {agent!r}.",
                    path="form:agents",
                )

    @router.get("/page/api/campaigns")
    async def campaign_list(viewer: Viewer) -> dict[str, Any]:
        """The key's campaigns, newest first, with their counts."""
        manager = manager_for(viewer[1])

        def scan() -> list[dict[str, Any]]:
            return [manager.status(meta) for meta in manager.recent(viewer[1], MAX_LISTED)]

        return {"campaigns": await asyncio.to_thread(scan)}

    @router.post("/page/api/campaigns/preview")
    async def campaign_preview(
        viewer: Viewer, file: Annotated[UploadFile, File()], form: Upload, csrf: Csrf = None
    ) -> dict[str, Any]:
        """What uploading this list would accept and refuse (as ``/v1/campaigns/preview``)."""
        key = act(viewer, csrf, "campaigns")
        manager_for(key)
        may_dial_for(key, form.agents)
        data = await file.read()
        _, preview = await asyncio.to_thread(
            read_upload, data, form.settings, now=datetime.now(UTC)
        )
        return preview

    @router.post("/page/api/campaigns", status_code=201)
    async def campaign_create(
        viewer: Viewer, file: Annotated[UploadFile, File()], form: Upload, csrf: Csrf = None
    ) -> dict[str, Any]:
        """Create a campaign from an uploaded CSV (as ``POST /v1/campaigns``); nothing dials yet."""
        key = act(viewer, csrf, "campaigns")
        manager = manager_for(key)
        may_dial_for(key, form.agents)
        meta = await manager.create_from_upload(key, await file.read(), form, file.filename)
        return await asyncio.to_thread(manager.status, meta)

    @router.get("/page/api/campaigns/{campaign_id}")
    async def campaign_detail(campaign_id: str, viewer: Viewer) -> dict[str, Any]:
        """The campaign's card: status, agents, rate budget, calls per minute, deferred."""
        manager = manager_for(viewer[1])
        meta = manager.load(campaign_id, viewer[1])
        return await manager.view(meta)

    @router.post("/page/api/campaigns/{campaign_id}/{action}")
    async def campaign_action(
        campaign_id: str,
        action: Literal["start", "pause", "resume", "stop"],
        viewer: Viewer,
        csrf: Csrf = None,
    ) -> dict[str, Any]:
        """Start, pause, resume or stop; a second supervisor's same action is a clear 409."""
        key = act(viewer, csrf, "campaigns")
        manager = manager_for(key)
        meta = manager.load(campaign_id, key)
        if action in ("start", "resume"):
            meta = await manager.start(meta)
        else:
            meta = await manager.halt(meta, "paused" if action == "pause" else "stopped")
        return await asyncio.to_thread(manager.status, meta)

    @router.get("/page/campaigns/{campaign_id}/report.{fmt}")
    async def campaign_report(
        campaign_id: str, fmt: Literal["csv", "json"], viewer: Viewer
    ) -> Response:
        """The report as a download: the same bytes as ``/v1/campaigns/{id}/report``."""
        manager = manager_for(viewer[1])
        meta = manager.load(campaign_id, viewer[1])
        text = await asyncio.to_thread(manager.report, meta, fmt)
        filename = report_filename(meta.name, meta.id, fmt)
        return Response(
            text,
            media_type="application/json" if fmt == "json" else "text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return router
