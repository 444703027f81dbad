"""The FastAPI application of ``gcdial serve``; the OpenAPI document is generated from it.

(No ``from __future__ import annotations`` here: FastAPI reads the route signatures, which use
names local to ``create_app``.)

Security is layered outside-in: the request size limit (before any body is read), CORS only when
configured, then per route: Bearer API key -> the key's rate -> its scopes -> its agents.
"""

import asyncio
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Header, Query, Request, UploadFile
from fastapi import Path as FastApiPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gcdial.client import AsyncClient
from gcdial.errors import GcdialError, NotFoundError
from gcdial.serve.campaign_form import CampaignForm, campaign_form
from gcdial.serve.campaigns import CampaignManager, read_upload
from gcdial.serve.config import ServeConfig, default_campaigns_dir
from gcdial.serve.models import (
    AgentsPage,
    CallRequest,
    CallResource,
    CallsPage,
    CampaignDetailResource,
    CampaignPreview,
    CampaignResource,
    WebhookCreate,
    WebhookCreated,
    WebhookResource,
)
from gcdial.serve.params import CallId, CampaignId, WebhookId, event_cursor
from gcdial.serve.problems import ApiProblem, ErrorBody, ErrorItem, json_path, problem_body
from gcdial.serve.review import Reviews
from gcdial.serve.review_api import add_review_api
from gcdial.serve.service import TERMINAL_EVENTS, DialService, call_json, event_visible, iso
from gcdial.serve.signing import new_secret
from gcdial.serve.store import ApiKeyRecord, Store, StoreError, WebhookEndpoint, hash_api_key
from gcdial.serve.strict_json import StrictJson
from gcdial.serve.web import mount_page
from gcdial.serve.webhook_targets import TargetRefused

__all__ = ["MAX_IDEMPOTENCY_KEY", "create_app"]

logger = logging.getLogger("gcdial.serve")

MAX_IDEMPOTENCY_KEY = 255
_KEY_CHARS = re.compile(r"^[\x21-\x7e]+$")
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": why}
    for code, why in {
        400: "Bad request (malformed JSON, missing or bad header)",
        401: "Missing or unknown API key",
        403: "The key may not do this (scope or agent)",
        404: "Not found",
        413: "Request too large",
        422: "Invalid body or parameters",
        429: "Rate limit of the key exceeded",
    }.items()
}
_UPLOAD_PATHS = frozenset(
    {"/v1/campaigns", "/v1/campaigns/preview", "/page/api/campaigns", "/page/api/campaigns/preview"}
)
_TERMINAL_STATUSES = ("unknown", "not_placed", "refused")


def _problem_response(problem: ApiProblem) -> JSONResponse:
    return JSONResponse(problem_body(problem.detail), problem.status, headers=problem.headers)


class _SizeLimit:
    """Refuse bodies over ``limit`` bytes: by Content-Length at once, else while reading."""

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int) -> None:
        self.app = app
        self.default_limit = limit
        self.upload_limit = upload_limit

    def _too_large(self, limit: int) -> JSONResponse:
        return _problem_response(
            ApiProblem(
                413,
                "request_too_large",
                f"The request body is over the limit of {limit} bytes.",
                hint="Send a smaller body; the limit is a setting of the service.",
            )
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["method"] == "POST" and scope["path"] in _UPLOAD_PATHS
        limit = self.upload_limit if upload else self.default_limit
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    await self._too_large(limit)(scope, receive, send)
                    return
        seen = 0
        started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal seen, started, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Answer now, then tell the app the client left, and drop what it sends.
                    refused = True
                    if not started:
                        started = True
                        await self._too_large(limit)(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


class _RateLimiter:
    """A token bucket per API key (per replica): ``rate_per_minute`` with a burst of as many."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: ApiKeyRecord) -> float:
        """0 when allowed, else seconds until a request would be."""
        rate = key.rate_per_minute / 60.0
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key.id, (float(key.rate_per_minute), now))
            tokens = min(float(key.rate_per_minute), tokens + (now - at) * rate)
            if tokens >= 1.0:
                self._buckets[key.id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key.id] = (tokens, now)
            return (1.0 - tokens) / rate


def create_app(
    store: Store,
    client_factory: Callable[[], AsyncClient],
    config: ServeConfig | None = None,
    *,
    clock: Callable[[], float] = time.time,
    single_process: bool = False,
) -> FastAPI:
    """The app: routes, error handlers, middleware; the service starts in its lifespan."""
    cfg = config or ServeConfig()
    service = DialService(store, client_factory, cfg, clock=clock, single_process=single_process)
    limiter = _RateLimiter()
    campaigns = CampaignManager(Path(cfg.campaigns_dir or default_campaigns_dir()), service)
    reviews = Reviews(service, campaigns)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await campaigns.stop_all()
            await service.stop()

    app = FastAPI(
        title="gcdial serve",
        version="1",
        description=(
            "Click-to-dial for Genesys Cloud: place calls on behalf of agents with retries that "
            "never ring twice (Idempotency-Key), follow them by SSE or signed webhooks."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    if cfg.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cfg.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
            expose_headers=["Idempotent-Replayed", "Location"],
        )
    app.add_middleware(StrictJson)  # inside the size limit: never buffers more than it allows
    app.add_middleware(_SizeLimit, limit=cfg.max_body_bytes, upload_limit=cfg.max_upload_bytes)

    @app.exception_handler(ApiProblem)
    async def _on_problem(_: Request, exc: ApiProblem) -> JSONResponse:
        return _problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        items = [
            ErrorItem(path=json_path(tuple(err.get("loc", ()))), message=str(err.get("msg", "")))
            for err in exc.errors()
        ]
        if any(err.get("type") == "json_invalid" for err in exc.errors()):
            return _problem_response(
                ApiProblem(
                    400,
                    "malformed_json",
                    "The request body is not valid JSON.",
                    hint="Send a JSON object with Content-Type: application/json.",
                    path="$",
                )
            )
        first = items[0] if items else ErrorItem(path=None, message="invalid request")
        return _problem_response(
            ApiProblem(
                422,
                "invalid_request",
                f"{first.path}: {first.message}" if first.path else first.message,
                hint="Fix the field named in 'path' (unknown fields are refused).",
                path=first.path,
                errors=items,
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _problem_response(
            ApiProblem(exc.status_code, kind, str(exc.detail), headers=dict(exc.headers or {}))
        )

    @app.exception_handler(StoreError)
    async def _on_store(_: Request, exc: StoreError) -> JSONResponse:
        logger.error("store unavailable: %s", exc)
        return _problem_response(
            ApiProblem(
                503,
                "store_unavailable",
                "The service's database is unavailable; retry with the same Idempotency-Key.",
                headers={"Retry-After": "5"},
            )
        )

    @app.exception_handler(Exception)
    async def _on_crash(_: Request, exc: Exception) -> JSONResponse:
        logger.error("internal error: %s", type(exc).__name__)
        return _problem_response(
            ApiProblem(500, "internal_error", "The service failed on this request.")
        )

    bearer = HTTPBearer(auto_error=False, description="An API key from `gcdial serve keys create`.")

    async def api_key(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> ApiKeyRecord:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise ApiProblem(
                401,
                "unauthorized",
                "This API needs an API key: Authorization: Bearer <key>.",
                hint="Create one with `gcdial serve keys create --name <name>`.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        key = await service.db(store.find_api_key, hash_api_key(credentials.credentials))
        if key is None:
            raise ApiProblem(
                401,
                "unauthorized",
                "The API key is not known or was revoked.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        wait = limiter.take(key)
        if wait > 0:
            service.metrics.api_rejected.inc()
            raise ApiProblem(
                429,
                "rate_limited",
                f"This API key may send {key.rate_per_minute} requests per minute.",
                hint="Retry after the number of seconds in Retry-After.",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return key

    Key = Annotated[ApiKeyRecord, Depends(api_key)]

    def need(key: ApiKeyRecord, scope: str) -> None:
        if scope not in key.scopes and "admin" not in key.scopes:
            raise ApiProblem(
                403,
                "forbidden",
                f"This API key lacks the '{scope}' scope.",
                hint=f"Create a key with --scopes including {scope}.",
            )

    def may_dial_for(key: ApiKeyRecord, agent: str) -> None:
        if key.agents and agent.lower() not in key.agents:
            raise ApiProblem(
                403,
                "agent_not_allowed",
                f"This API key may not dial for agent {agent!r}.",
                hint="Use one of the key's agents, or create a key with --agents including it.",
                path="$.agent",
            )

    async def own_call(key: ApiKeyRecord, call_id: str) -> Any:
        call = await service.db(store.get_call, call_id)
        if call is None or not service.owns(key, call):
            raise ApiProblem(404, "not_found", f"No call {call_id!r}.")
        return call

    @app.post(
        "/v1/calls",
        status_code=202,
        response_model=CallResource,
        responses={**_ERRORS, 409: {"model": ErrorBody, "description": "Key in use"}},
        tags=["calls"],
        summary="Place a call (the Idempotency-Key header is required)",
    )
    async def create_call(
        request: CallRequest,
        key: Key,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description="Required; 1-255 printable ASCII characters, unique per intended call.",
            ),
        ] = None,
    ) -> Response:
        need(key, "dial")
        if idempotency_key is None or not idempotency_key.strip():
            raise ApiProblem(
                400,
                "idempotency_key_missing",
                "The Idempotency-Key header is required on POST /v1/calls.",
                hint="Send a new unique value (e.g. a UUID) per call, and the same one on retries.",
                path="header:Idempotency-Key",
            )
        if len(idempotency_key) > MAX_IDEMPOTENCY_KEY or not _KEY_CHARS.match(idempotency_key):
            raise ApiProblem(
                400,
                "idempotency_key_invalid",
                f"The Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters.",
                path="header:Idempotency-Key",
            )
        may_dial_for(key, request.agent)
        answer = await service.create_call(key, idempotency_key, request)
        if answer.kind == "mismatch":
            raise ApiProblem(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request body.",
                hint="Use a new key for a different call; retries must send the same body.",
                path="header:Idempotency-Key",
            )
        if answer.kind == "in_progress":
            raise ApiProblem(
                409,
                "idempotency_key_in_progress",
                "A request with this Idempotency-Key is still placing the call.",
                hint="Retry in a moment with the same key and body to get its answer.",
                path="header:Idempotency-Key",
                headers={"Retry-After": "1"},
            )
        headers = {"Location": f"/v1/calls/{answer.call_id}"}
        if answer.kind == "replay":
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(answer.body, answer.status_code, headers=headers)

    @app.get("/v1/calls/{call_id}", response_model=CallResource, responses=_ERRORS, tags=["calls"])
    async def get_call(call_id: CallId, key: Key) -> dict[str, Any]:
        need(key, "watch")
        return call_json(await own_call(key, call_id))

    @app.get("/v1/calls", response_model=CallsPage, responses=_ERRORS, tags=["calls"])
    async def list_calls(
        key: Key,
        agent: Annotated[str | None, Query(max_length=200)] = None,
        since: Annotated[datetime | None, Query(description="ISO 8601 time")] = None,
        status: Annotated[
            str | None, Query(pattern="^(placing|placed|unknown|not_placed|refused)$")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        source: Annotated[
            str | None, Query(pattern="^(api|campaign)$", description="Who placed the calls")
        ] = None,
        campaign: Annotated[
            str | None, Query(max_length=40, description="One campaign's calls (its id)")
        ] = None,
    ) -> dict[str, Any]:
        need(key, "watch")
        calls = await service.db(
            store.list_calls,
            agent=agent,
            since=_epoch(since) if since is not None else None,
            status=status,
            api_key_id=None if "admin" in key.scopes else key.id,
            limit=limit,
            source=source,
            campaign_id=campaign,
        )
        return {"calls": [call_json(call) for call in calls]}

    @app.delete(
        "/v1/calls/{call_id}",
        status_code=202,
        response_model=CallResource,
        responses={**_ERRORS, 409: {"model": ErrorBody, "description": "Nothing to hang up"}},
        tags=["calls"],
        summary="Hang up a call",
    )
    async def hang_up(call_id: CallId, key: Key) -> dict[str, Any]:
        need(key, "dial")
        call = await own_call(key, call_id)
        if call.conversation_id is None or call.outcome is not None:
            raise ApiProblem(
                409,
                "not_connected",
                f"Call {call_id} has no live conversation to hang up (status {call.status}).",
            )
        try:
            await service.hang_up(key, call)
        except NotFoundError:
            raise ApiProblem(409, "not_connected", "The conversation is already over.") from None
        except GcdialError as exc:
            raise ApiProblem(502, "genesys_error", exc.message, hint=exc.hint) from None
        return call_json(call)

    def _after(last_event_id: str | None) -> int:
        return event_cursor(last_event_id, where="header:Last-Event-ID") or 0

    def _stream(key: ApiKeyRecord, after: int, call_id: str | None) -> EventSourceResponse:

        async def events() -> AsyncIterator[dict[str, str]]:
            last = after
            service.metrics.sse_streams.inc()
            try:
                while True:
                    batch = await service.db(store.events_after, last, call_id=call_id)
                    for event in batch:
                        last = event.id
                        data = json.loads(event.data)
                        if not event_visible(data, key):
                            continue
                        data.pop("apiKeyId", None)
                        yield {"id": str(event.id), "event": event.type, "data": json.dumps(data)}
                        if call_id is not None and event.type in TERMINAL_EVENTS:
                            return
                    if not batch:
                        await service.hub.wait_beyond(last, cfg.sse_ping_s)
            finally:
                service.metrics.sse_streams.dec()

        return EventSourceResponse(
            events(), ping=int(cfg.sse_ping_s), send_timeout=cfg.sse_send_timeout_s
        )

    _sse: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}
    }

    @app.get(
        "/v1/calls/{call_id}/events",
        responses={**_ERRORS, **_sse},
        response_class=EventSourceResponse,
        tags=["events"],
        summary="One call's events (SSE); resume with Last-Event-ID",
    )
    async def call_events(
        call_id: CallId,
        key: Key,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> EventSourceResponse:
        need(key, "watch")
        await own_call(key, call_id)
        return _stream(key, _after(last_event_id), call_id)

    @app.get(
        "/v1/events",
        responses={**_ERRORS, **_sse},
        response_class=EventSourceResponse,
        tags=["events"],
        summary="Every call event this key may see (SSE); resume with Last-Event-ID",
    )
    async def all_events(
        key: Key,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> EventSourceResponse:
        need(key, "watch")
        cursor = event_cursor(last_event_id, where="header:Last-Event-ID")
        after = cursor if cursor is not None else service.hub.last_id
        return _stream(key, after, None)

    @app.get("/v1/agents", response_model=AgentsPage, responses=_ERRORS, tags=["agents"])
    async def agents(
        key: Key,
        agent: Annotated[list[str] | None, Query(max_length=50)] = None,
    ) -> dict[str, Any]:
        """Readiness of the given agents, else the key's agents, else those of recent calls."""
        need(key, "watch")
        wanted = list(agent or key.agents)
        if not wanted:
            recent = await service.db(
                store.list_calls, api_key_id=None if "admin" in key.scopes else key.id, limit=200
            )
            wanted = list(dict.fromkeys(call.agent for call in recent))[:50]
        for name in wanted:
            may_dial_for(key, name)
        states = await asyncio.gather(*(service.agent_state(name) for name in wanted))
        # Their presence changes are agent.updated events on /v1/events from now on.
        await service.presence.watch({s.id: s.agent for s in states if s.id})
        return {"agents": [state.model_dump() for state in states]}

    @app.post(
        "/v1/webhooks",
        status_code=201,
        response_model=WebhookCreated,
        responses=_ERRORS,
        tags=["webhooks"],
        summary="Register a webhook endpoint (admin); its secret is shown only in this answer",
    )
    async def add_webhook(body: WebhookCreate, key: Key) -> dict[str, Any]:
        need(key, "admin")
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
            created_at=clock(),
            api_key_id=key.id,
            description=body.description,
        )
        await service.db(store.add_webhook, endpoint)
        return {**_webhook_json(endpoint), "secret": endpoint.secret}

    @app.get(
        "/v1/webhooks",
        response_model=list[WebhookResource],
        responses=_ERRORS,
        tags=["webhooks"],
    )
    async def list_webhooks(key: Key) -> list[dict[str, Any]]:
        need(key, "admin")
        return [_webhook_json(w) for w in await service.db(store.list_webhooks)]

    @app.delete("/v1/webhooks/{webhook_id}", status_code=204, responses=_ERRORS, tags=["webhooks"])
    async def delete_webhook(webhook_id: WebhookId, key: Key) -> Response:
        need(key, "admin")
        if not await service.db(store.delete_webhook, webhook_id):
            raise ApiProblem(404, "not_found", f"No webhook {webhook_id!r}.")
        return Response(status_code=204)

    campaign_errors = {
        **_ERRORS,
        409: {"model": ErrorBody, "description": "Not in a state that allows this"},
    }

    Upload = Annotated[CampaignForm, Depends(campaign_form)]
    ListFile = Annotated[UploadFile, File(description="The contact list (UTF-8 CSV)")]

    def may_upload(key: ApiKeyRecord, form: CampaignForm) -> None:
        need(key, "campaigns")
        for agent in form.agents:
            may_dial_for(key, agent)

    @app.post(
        "/v1/campaigns/preview",
        response_model=CampaignPreview,
        responses=campaign_errors,
        tags=["campaigns"],
        summary="Which rows of a contact list would be refused, and why; stores and dials nothing",
    )
    async def preview_campaign(key: Key, file: ListFile, form: Upload) -> dict[str, Any]:
        may_upload(key, form)
        data = await file.read()
        _, preview = await asyncio.to_thread(
            read_upload, data, form.settings, now=datetime.now(UTC)
        )
        return preview

    @app.post(
        "/v1/campaigns",
        status_code=201,
        response_model=CampaignResource,
        responses=campaign_errors,
        tags=["campaigns"],
        summary="Create a campaign from an uploaded CSV (multipart); nothing is dialed yet",
    )
    async def create_campaign(key: Key, file: ListFile, form: Upload) -> dict[str, Any]:
        may_upload(key, form)
        meta = await campaigns.create_from_upload(key, await file.read(), form, file.filename)
        return await asyncio.to_thread(campaigns.status, meta)

    @app.get(
        "/v1/campaigns/{campaign_id}",
        response_model=CampaignResource,
        responses=campaign_errors,
        tags=["campaigns"],
    )
    async def get_campaign(campaign_id: CampaignId, key: Key) -> dict[str, Any]:
        need(key, "campaigns")
        return await asyncio.to_thread(campaigns.status, campaigns.load(campaign_id, key))

    add_review_api(app, reviews, campaigns, api_key, need, _ERRORS)  # before .../{action}

    @app.get(
        "/v1/campaigns/{campaign_id}/detail",
        response_model=CampaignDetailResource,
        responses=campaign_errors,
        tags=["campaigns"],
        summary="A campaign with its agents, rate budget, calls per minute and deferred contacts",
    )
    async def campaign_detail(campaign_id: CampaignId, key: Key) -> dict[str, Any]:
        need(key, "campaigns")
        meta = campaigns.load(campaign_id, key)
        return await asyncio.to_thread(campaigns.detail, meta, campaigns.live(meta.id))

    @app.post(
        "/v1/campaigns/{campaign_id}/{action}",
        response_model=CampaignResource,
        responses=campaign_errors,
        tags=["campaigns"],
        summary="start, pause, resume or stop a campaign",
    )
    async def campaign_action(
        campaign_id: CampaignId,
        action: Annotated[str, FastApiPath(pattern="^(start|pause|resume|stop)$")],
        key: Key,
    ) -> dict[str, Any]:
        need(key, "campaigns")
        meta = campaigns.load(campaign_id, key)
        if action in ("start", "resume"):
            meta = await campaigns.start(meta)
        else:
            meta = await campaigns.halt(meta, "paused" if action == "pause" else "stopped")
        return await asyncio.to_thread(campaigns.status, meta)

    @app.get(
        "/v1/campaigns/{campaign_id}/report",
        responses={
            **campaign_errors,
            200: {"content": {"text/csv": {}, "application/json": {}}, "description": "Report"},
        },
        response_class=Response,
        tags=["campaigns"],
    )
    async def campaign_report(
        campaign_id: CampaignId,
        key: Key,
        format: Annotated[str, Query(pattern="^(csv|json)$")] = "csv",
    ) -> Response:
        need(key, "campaigns")
        meta = campaigns.load(campaign_id, key)
        text = await asyncio.to_thread(campaigns.report, meta, format)
        media = "application/json" if format == "json" else "text/csv"
        return Response(text, media_type=media)

    @app.get("/healthz", tags=["ops"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Genesys reachable, token valid, store writable",
        responses={503: {"model": ErrorBody, "description": "Not ready"}},
    )
    async def readyz() -> Response:
        problems = await service.readiness()
        if not problems:
            return JSONResponse({"status": "ready"})
        return _problem_response(
            ApiProblem(
                503,
                "not_ready",
                "Not ready: " + "; ".join(f"{name}: {why}" for name, why in problems.items()),
                errors=[ErrorItem(path=name, message=why) for name, why in problems.items()],
            )
        )

    @app.get(
        "/metrics",
        tags=["ops"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus metrics"}},
    )
    async def metrics() -> Response:
        m = service.metrics
        m.webhook_backlog.set(await service.db(store.outbox_backlog))
        budget = service.client.budget
        m.rate_limited.set(budget.rate_limited_count)
        m.budget_left.set(-1 if budget.remaining is None else budget.remaining)
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    mount_page(app, service, campaigns=campaigns, reviews=reviews)
    return app


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ApiProblem(
            422, "invalid_request", "since: give a time zone (e.g. 2026-01-01T00:00:00Z).",
            path="query:since",
        )  # fmt: skip
    return moment.timestamp()


def _webhook_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "createdAt": iso(endpoint.created_at),
    }
