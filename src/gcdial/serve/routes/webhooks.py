"""``/v1/webhooks``: register, list and remove signed webhook endpoints (admin).

(No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from gcdial.serve.models import WebhookCreate, WebhookCreated, WebhookResource
from gcdial.serve.params import WebhookId
from gcdial.serve.problems import ApiProblem
from gcdial.serve.routes.deps import ERRORS, Caller, Service
from gcdial.serve.service import iso
from gcdial.serve.signing import new_secret
from gcdial.serve.store import WebhookEndpoint
from gcdial.serve.webhook_targets import TargetRefused

__all__ = ["router", "webhook_json"]

router = APIRouter(tags=["webhooks"])


def webhook_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """A webhook endpoint as the API shows it: never its secret, but at creation."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "createdAt": iso(endpoint.created_at),
    }


@router.post(
    "/v1/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    responses=ERRORS,
    summary="Register a webhook endpoint (admin); its secret is shown only in this answer",
)
async def add_webhook(body: WebhookCreate, caller: Caller, service: Service) -> dict[str, Any]:
    """A new endpoint: every event from now on is delivered to it, signed with its secret."""
    caller.need("admin")
    try:
        await service.webhook_guard.pin(body.url)
    except TargetRefused as exc:
        raise ApiProblem(
            422,
            "webhook_url_refused",
            f"url: {exc.message}.",
            hint="Register a public https URL of your receiver.",
            path="$.url",
        ) from None
    endpoint = WebhookEndpoint(
        id="wh_" + uuid.uuid4().hex[:16],
        url=body.url,
        secret=new_secret(),
        created_at=service.clock(),
        api_key_id=caller.key.id,
        description=body.description,
    )
    await service.db(service.store.add_webhook, endpoint)
    return {**webhook_json(endpoint), "secret": endpoint.secret}


@router.get("/v1/webhooks", response_model=list[WebhookResource], responses=ERRORS)
async def list_webhooks(caller: Caller, service: Service) -> list[dict[str, Any]]:
    """Every endpoint (without secrets)."""
    caller.need("admin")
    return [webhook_json(w) for w in await service.db(service.store.list_webhooks)]


@router.delete("/v1/webhooks/{webhook_id}", status_code=204, responses=ERRORS)
async def delete_webhook(webhook_id: WebhookId, caller: Caller, service: Service) -> Response:
    """Stop delivering to an endpoint."""
    caller.need("admin")
    if not await service.db(service.store.delete_webhook, webhook_id):
        raise ApiProblem(404, "not_found", f"No webhook {webhook_id!r}.")
    return Response(status_code=204)
