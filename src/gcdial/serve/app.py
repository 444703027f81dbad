"""The FastAPI application of ``gcdial serve``: it assembles, it decides nothing.

The routers (:mod:`gcdial.serve.routes`, one per resource) hold the handlers; who is calling and
what they may do is :mod:`gcdial.serve.principal`'s; the page (:mod:`gcdial.serve.web`) adds only
sign-in, sign-out, its HTML and static files, and the number preview. The OpenAPI document is
generated from the routers.

Security is layered outside-in: the request size limit (before any body is read), CORS only when
configured, then per route: the caller (Bearer key, or session cookie + CSRF token) -> the key's
rate -> its scopes -> its agents.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gcdial.client import AsyncClient
from gcdial.serve.campaigns import CampaignManager, refuse_old_campaigns
from gcdial.serve.config import ServeConfig
from gcdial.serve.principal import Authenticator
from gcdial.serve.problems import ApiProblem, ErrorItem, json_path, problem_body
from gcdial.serve.review import Reviews
from gcdial.serve.routes import ROUTERS
from gcdial.serve.service import DialService
from gcdial.serve.session import WIDGET_EXPIRES_HEADER, WIDGET_EXPIRES_STATE, load_secret
from gcdial.serve.store import Store, StoreError
from gcdial.serve.strict_json import StrictJson
from gcdial.serve.web import mount_page

__all__ = ["create_app"]

logger = logging.getLogger("gcdial.serve")

_UPLOAD_PATHS = frozenset({"/v1/campaigns", "/v1/campaigns/preview"})


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


class _WidgetExpiry:
    """Add ``Gcdial-Session-Expires-In`` to the answers of requests made with a widget token (the
    caller's dependency leaves the seconds in the request's state)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # the dict the request's State writes to

        async def send_with_expiry(message: Message) -> None:
            left = state.get(WIDGET_EXPIRES_STATE)
            if message["type"] == "http.response.start" and left is not None:
                headers = [*message.get("headers", ()), (_EXPIRES_HEADER, str(left).encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_expiry)


_EXPIRES_HEADER = WIDGET_EXPIRES_HEADER.lower().encode()


def create_app(
    store: Store,
    client_factory: Callable[[], AsyncClient],
    config: ServeConfig | None = None,
    *,
    clock: Callable[[], float] = time.time,
    single_process: bool = False,
    page_secret: bytes | None = None,
) -> FastAPI:
    """The app: routers, error handlers, middleware; the service starts in its lifespan."""
    cfg = config or ServeConfig()
    service = DialService(store, client_factory, cfg, clock=clock, single_process=single_process)
    if cfg.campaigns_dir:
        refuse_old_campaigns(Path(cfg.campaigns_dir))
    campaigns = CampaignManager(service.core, intent_ladder=service.recovery.settle_left_attempt)
    store_path = getattr(store, "path", None)
    secret = page_secret or load_secret(store_path if isinstance(store_path, Path) else None)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        campaigns.watch()
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
    app.state.auth = Authenticator(service.core, secret)
    app.state.campaigns = campaigns
    app.state.reviews = Reviews(service.core, campaigns)
    origins = list(dict.fromkeys((*cfg.cors_origins, *cfg.widget_origins)))
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
            expose_headers=["Idempotent-Replayed", "Location", WIDGET_EXPIRES_HEADER],
        )
        app.add_middleware(_WidgetExpiry)
    app.add_middleware(StrictJson)  # inside the size limit: never buffers more than it allows
    app.add_middleware(_SizeLimit, limit=cfg.max_body_bytes, upload_limit=cfg.max_upload_bytes)
    _add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    mount_page(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error, whoever raises it, answers in the one error shape (never a traceback)."""

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
