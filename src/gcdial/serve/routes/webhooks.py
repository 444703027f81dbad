"""``/v1/webhooks``: register, list and remove signed webhook endpoints (admin); see their
deliveries, redeliver dead letters, send a signed test ping.

(No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from gcdial.serve.call_views import iso
from gcdial.serve.models import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveries,
    WebhookPing,
    WebhookResource,
)
from gcdial.serve.params import WebhookId
from gcdial.serve.problems import ApiProblem, ErrorBody
from gcdial.serve.routes.deps import ERRORS, Caller, Service, WebhookPart
from gcdial.serve.signing import new_secret
from gcdial.serve.store import Delivery, WebhookEndpoint
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
        "events": list(endpoint.events) if endpoint.events is not None else None,
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    """A delivery as the API shows it: attempts, state, and when it is tried next."""
    return {
        "id": delivery.id,
        "eventId": f"evt_{delivery.event_id}",
        "type": delivery.event.type,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "nextAttemptAt": iso(delivery.next_attempt_at) if delivery.state == "pending" else None,
        "lastError": delivery.last_error,
        "doneAt": iso(delivery.done_at) if delivery.done_at is not None else None,
    }


@router.post(
    "/v1/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    responses=ERRORS,
    summary="Register a webhook endpoint (admin); its secret is shown only in this answer",
)
async def add_webhook(
    body: WebhookCreate, caller: Caller, service: Service, webhooks: WebhookPart
) -> dict[str, Any]:
    """A new endpoint: every event from now on is delivered to it, signed with its secret."""
    caller.need("admin")
    try:
        await webhooks.webhook_guard.pin(body.url)
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
        events=tuple(body.events) if body.events is not None else None,
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


async def _endpoint(service: Any, webhook_id: str) -> WebhookEndpoint:
    endpoint: WebhookEndpoint | None = await service.db(service.store.get_webhook, webhook_id)
    if endpoint is None:
        raise ApiProblem(404, "not_found", f"No webhook {webhook_id!r}.")
    return endpoint


@router.get(
    "/v1/webhooks/{webhook_id}/deliveries",
    response_model=WebhookDeliveries,
    responses=ERRORS,
    summary="An endpoint's deliveries: attempts, state, next try (dead letters with state=dead)",
)
async def list_deliveries(
    webhook_id: WebhookId,
    caller: Caller,
    service: Service,
    state: Annotated[
        str | None, Query(pattern="^(pending|delivered|dead)$", description="Only these")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Newest first."""
    caller.need("admin")
    await _endpoint(service, webhook_id)
    found = await service.db(service.store.list_deliveries, webhook_id, state=state, limit=limit)
    return {"deliveries": [delivery_json(d) for d in found]}


@router.post(
    "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    responses={**ERRORS, 409: {"model": ErrorBody, "description": "Not a dead letter"}},
    summary="Try a dead letter again, with the whole retry schedule ahead of it",
)
async def redeliver(
    webhook_id: WebhookId,
    delivery_id: Annotated[int, Path(ge=1, le=2**62)],
    caller: Caller,
    service: Service,
) -> Response:
    """The same event, the same ``webhook-id`` (receivers dedupe on it), due now."""
    caller.need("admin")
    await _endpoint(service, webhook_id)
    done = await service.db(service.store.redeliver, webhook_id, delivery_id, now=service.clock())
    if not done:
        raise ApiProblem(
            409,
            "not_dead",
            f"Delivery {delivery_id} of {webhook_id} is not a dead letter.",
            hint=f"List them with GET /v1/webhooks/{webhook_id}/deliveries?state=dead.",
            path="path:delivery_id",
        )
    return Response(status_code=202)


@router.post(
    "/v1/webhooks/{webhook_id}/test",
    response_model=WebhookPing,
    responses=ERRORS,
    summary="Send the endpoint a signed webhook.ping now, and say what it answered",
)
async def ping(
    webhook_id: WebhookId, caller: Caller, service: Service, webhooks: WebhookPart
) -> dict[str, Any]:
    """Once, not retried, not in the outbox: a check of the receiver and its signature code."""
    caller.need("admin")
    endpoint = await _endpoint(service, webhook_id)
    msg_id = "ping_" + uuid.uuid4().hex
    data = {"type": "webhook.ping", "webhook": endpoint.id}
    error = await webhooks.post_signed(endpoint, msg_id, "webhook.ping", service.clock(), data)
    return {"delivered": error is None, "eventId": msg_id, "error": error}
