"""The page's Review panel endpoints: what needs a person, and their decisions.

Added to the page's router by ``mount_page``; signed in by the session cookie, actions checked for
the CSRF token and the key's scope (``dial`` for a call's verdict, ``campaigns`` for a campaign's),
then done by :class:`gcdial.serve.review.Reviews`, the same code as ``/v1``.

(No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi import Path as FastApiPath

from gcdial.serve.campaigns import CampaignManager
from gcdial.serve.problems import ApiProblem
from gcdial.serve.review import ReassignRequest, Reviews, VerdictRequest
from gcdial.serve.service import DialService, call_json
from gcdial.serve.store import ApiKeyRecord, AuditEntry, CallRecord, Event

__all__ = ["add_review_routes"]

Act = Callable[[Any, str | None, str], ApiKeyRecord]


def add_review_routes(
    router: APIRouter,
    service: DialService,
    reviews: Reviews,
    *,
    signed_in: Callable[..., Awaitable[tuple[Any, ApiKeyRecord]]],
    act: Act,
    may: Callable[[ApiKeyRecord, str], bool],
    view: Callable[[CallRecord, dict[str, str]], Awaitable[dict[str, Any]]],
    key_names: Callable[[], Awaitable[dict[str, str]]],
) -> None:
    """Add ``/page/api/review`` and the page's review actions to ``router``."""
    store = service.store
    Viewer = Annotated[tuple[Any, ApiKeyRecord], Depends(signed_in)]
    Csrf = Annotated[str | None, Header(alias="X-CSRF-Token")]

    def campaigns_of(key: ApiKeyRecord) -> CampaignManager | None:
        if reviews.campaigns is None or not may(key, "campaigns"):
            return None
        return reviews.campaigns

    @router.get("/page/api/review")
    async def review(viewer: Viewer) -> dict[str, Any]:
        """Service calls of unknown outcome, each with its evidence (detail, events, audit), and
        the campaigns' attempts of unknown outcome and pinned contacts (campaigns scope)."""
        _, key = viewer
        unknown = await reviews.unknown_calls(key)
        # The store has no audit query by call: read it only when there is something to review.
        audit = await service.db(store.list_audit, limit=100_000) if unknown else []
        names = await key_names()
        items = []
        for call in unknown:
            events = await service.db(store.events_after, 0, call_id=call.id, limit=100)
            items.append(
                {
                    "call": await view(call, names),
                    "request": json.loads(call.request),
                    "events": [_event_line(e) for e in events],
                    "audit": [_audit_line(a, names) for a in audit if a.call_id == call.id],
                }
            )
        manager = campaigns_of(key)
        campaigns = await reviews.campaigns_to_review(key) if manager is not None else []
        return {
            "unknown": items,
            "campaigns": campaigns,
            "canDial": may(key, "dial"),
            "canCampaigns": manager is not None,
        }

    @router.post("/page/api/calls/{call_id}/verdict")
    async def call_verdict(
        call_id: str, body: VerdictRequest, viewer: Viewer, csrf: Csrf = None
    ) -> dict[str, Any]:
        """Record a verdict once: a second one (another supervisor, a double click) is a 409."""
        key = act(viewer, csrf, "dial")
        return call_json(await reviews.call_verdict(key, call_id, body))

    def manager_for(key: ApiKeyRecord) -> CampaignManager:
        manager = campaigns_of(key)
        if manager is None:
            raise ApiProblem(403, "forbidden", "Your API key lacks the 'campaigns' scope.")
        return manager

    @router.post("/page/api/review/campaigns/{campaign_id}/attempts/{attempt_id}/verdict")
    async def campaign_verdict(
        campaign_id: str,
        attempt_id: Annotated[int, FastApiPath(ge=1, le=2**62)],
        body: VerdictRequest,
        viewer: Viewer,
        csrf: Csrf = None,
    ) -> dict[str, Any]:
        key = act(viewer, csrf, "campaigns")
        meta = manager_for(key).load(campaign_id, key)
        return await reviews.campaign_verdict(key, meta, attempt_id, body)

    @router.post("/page/api/review/campaigns/{campaign_id}/reassign")
    async def reassign(
        campaign_id: str, body: ReassignRequest, viewer: Viewer, csrf: Csrf = None
    ) -> dict[str, Any]:
        key = act(viewer, csrf, "campaigns")
        meta = manager_for(key).load(campaign_id, key)
        return await reviews.reassign(key, meta, body)


def _event_line(event: Event) -> dict[str, Any]:
    data = json.loads(event.data)
    return {
        "id": event.id,
        "type": event.type,
        "at": dt.datetime.fromtimestamp(event.at, dt.UTC).isoformat(timespec="seconds"),
        "progress": data.get("progress"),
    }


def _audit_line(entry: AuditEntry, names: dict[str, str]) -> dict[str, Any]:
    return {
        "at": dt.datetime.fromtimestamp(entry.at, dt.UTC).isoformat(timespec="seconds"),
        "action": entry.action,
        "result": entry.result,
        "key": names.get(entry.api_key_id, entry.api_key_id),
        "detail": entry.detail,
    }
