"""The ``/v1`` routes of review: a verdict on a call, a campaign's review list and its decisions.

Registered by ``create_app`` (before ``/v1/campaigns/{id}/{action}``, whose path would otherwise
take ``reassign``); the work is :class:`gcdial.serve.review.Reviews`', shared with the page.

(No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header
from fastapi import Path as FastApiPath
from fastapi.responses import JSONResponse, Response

from gcdial.serve.campaigns import CampaignManager
from gcdial.serve.models import CallResource
from gcdial.serve.problems import ApiProblem, ErrorBody
from gcdial.serve.review import (
    CampaignReview,
    CampaignVerdictResult,
    ReassignRequest,
    ReassignResult,
    Reviews,
    VerdictRequest,
)
from gcdial.serve.store import ApiKeyRecord

__all__ = ["add_review_api"]

_KEY_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))


def add_review_api(
    app: FastAPI,
    reviews: Reviews,
    campaigns: CampaignManager,
    api_key: Callable[..., Coroutine[Any, Any, ApiKeyRecord]],
    need: Callable[[ApiKeyRecord, str], None],
    errors: dict[int | str, dict[str, Any]],
) -> None:
    """Add the review routes to ``app``; ``api_key`` is its Bearer-key dependency."""
    router = APIRouter(tags=["review"])
    Key = Annotated[ApiKeyRecord, Depends(api_key)]
    conflict = {
        **errors,
        409: {"model": ErrorBody, "description": "Already decided, or the campaign is running"},
    }

    @router.post(
        "/v1/calls/{call_id}/verdict",
        response_model=CallResource,
        responses=conflict,
        summary="Record what a person found about a call of unknown outcome (once)",
    )
    async def call_verdict(
        call_id: str,
        body: VerdictRequest,
        key: Key,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description="Optional; a retry with the same key and body replays the answer.",
            ),
        ] = None,
    ) -> Response:
        need(key, "dial")
        if idempotency_key is not None and (
            not 1 <= len(idempotency_key) <= 255 or not set(idempotency_key) <= _KEY_CHARS
        ):
            raise ApiProblem(
                400,
                "idempotency_key_invalid",
                "The Idempotency-Key must be 1-255 printable ASCII characters.",
                path="header:Idempotency-Key",
            )
        answer = await reviews.call_verdict_once(key, call_id, body, idempotency_key)
        headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
        return JSONResponse(answer.body, answer.status_code, headers=headers)

    @router.get(
        "/v1/campaigns/{campaign_id}/review",
        response_model=CampaignReview,
        responses=conflict,
        summary="A campaign's attempts of unknown outcome (with evidence) and pinned contacts",
    )
    async def campaign_review(campaign_id: str, key: Key) -> dict[str, Any]:
        need(key, "campaigns")
        return await reviews.campaign_review(campaigns.load(campaign_id, key))

    @router.post(
        "/v1/campaigns/{campaign_id}/attempts/{attempt_id}/verdict",
        response_model=CampaignVerdictResult,
        responses=conflict,
        summary="Record a verdict on a campaign attempt of unknown outcome (campaign paused)",
    )
    async def campaign_verdict(
        campaign_id: str,
        attempt_id: Annotated[int, FastApiPath(ge=1, le=2**62)],
        body: VerdictRequest,
        key: Key,
    ) -> dict[str, Any]:
        need(key, "campaigns")
        meta = campaigns.load(campaign_id, key)
        return await reviews.campaign_verdict(key, meta, attempt_id, body)

    @router.post(
        "/v1/campaigns/{campaign_id}/reassign",
        response_model=ReassignResult,
        responses=conflict,
        summary="Give contacts pinned to an agent to another agent or to any (campaign paused)",
    )
    async def reassign(campaign_id: str, body: ReassignRequest, key: Key) -> dict[str, Any]:
        need(key, "campaigns")
        meta = campaigns.load(campaign_id, key)
        return await reviews.reassign(key, meta, body)

    app.include_router(router)
