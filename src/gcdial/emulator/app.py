"""The emulator's ASGI application: routes, and the middleware every Genesys response passes."""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from email.utils import format_datetime

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gcdial._shared import CORRELATION_HEADER
from gcdial.emulator import analytics, calls, groups, oauth, routing, users
from gcdial.emulator.admin import admin_routes
from gcdial.emulator.calls import FAULT_SCOPE_KEY
from gcdial.emulator.config import EmulatorConfig
from gcdial.emulator.errorbody import ApiError
from gcdial.emulator.fixtures import Fixture, load_fixture
from gcdial.emulator.notifications import NotificationService
from gcdial.emulator.simulation import TelephoneNetwork
from gcdial.emulator.state import EmulatorState

logger = logging.getLogger("gcdial.emulator")

ADMIN_PREFIX = "/_emulator/"
API_PREFIX = "/api/"
UNMATCHED_ROUTE = "<unmatched>"
JSON_MEDIA_TYPE = "application/json"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def unsupported_media(method: str, path: str, headers: dict[str, str]) -> ApiError | None:
    """The 415 for a Platform API request whose body is not declared JSON.

    Every Platform API operation the emulator serves consumes only ``application/json`` (the
    official SDK's ``Content-Type`` list), so a body of any other type, or of no declared type,
    is refused before a handler could act on it.
    """
    if method not in BODY_METHODS or not path.startswith(API_PREFIX):
        return None
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if not has_body or media_type == JSON_MEDIA_TYPE:
        return None
    shown = media_type or "none"
    return ApiError(
        415,
        message=f"Unsupported media type {shown!r}: send the body as {JSON_MEDIA_TYPE}.",
        details=[{"errorCode": "unsupported.media.type", "fieldName": "Content-Type"}],
    )


def api_routes(notifications: NotificationService) -> list[BaseRoute]:
    """The Genesys routes, each named after its fault / rate-limit route name."""
    calls_base = "/api/v2/conversations/calls"
    return [
        Route("/oauth/token", oauth.token, methods=["POST"], name="token"),
        Route("/oauth/authorize", oauth.authorize, methods=["GET", "POST"], name="authorize"),
        Route("/api/v2/users/me", users.get_me, methods=["GET"], name="users"),
        Route("/api/v2/users/search", users.search, methods=["POST"], name="users"),
        Route("/api/v2/users/{userId}", users.get_user, methods=["GET"], name="users"),
        Route("/api/v2/users/{userId}/station", users.get_station, methods=["GET"], name="users"),
        Route(
            "/api/v2/users/{userId}/presences/purecloud",
            users.get_presence,
            methods=["GET"],
            name="users",
        ),
        Route(
            "/api/v2/users/{userId}/presences/purecloud",
            users.patch_presence,
            methods=["PATCH"],
            name="users",
        ),
        Route(
            "/api/v2/users/{userId}/routingstatus",
            users.put_routing_status,
            methods=["PUT"],
            name="users",
        ),
        Route(
            "/api/v2/stations/{stationId}",
            users.get_station_by_id,
            methods=["GET"],
            name="users",
        ),
        Route(
            "/api/v2/authorization/divisions/{divisionId}",
            users.get_division,
            methods=["GET"],
            name="users",
        ),
        Route(calls_base, calls.create_as_me, methods=["POST"], name="create_call"),
        Route(
            calls_base + "/user/{userId}",
            calls.create_on_behalf,
            methods=["POST"],
            name="create_call",
        ),
        Route(calls_base + "/{conversationId}", calls.get_call, methods=["GET"], name="get_call"),
        Route(
            calls_base + "/{conversationId}",
            calls.patch_call,
            methods=["PATCH"],
            name="patch_call",
        ),
        Route(
            calls_base + "/{conversationId}/participants/{participantId}",
            calls.patch_participant,
            methods=["PATCH"],
            name="patch_call",
        ),
        Route(
            "/api/v2/analytics/conversations/details/query",
            analytics.details_query,
            methods=["POST"],
            name="analytics",
        ),
        Route("/api/v2/routing/queues", routing.list_queues, methods=["GET"], name="routing"),
        Route(
            "/api/v2/routing/queues/{queueId}", routing.get_queue, methods=["GET"], name="routing"
        ),
        Route(
            "/api/v2/routing/queues/{queueId}/wrapupcodes",
            routing.queue_codes,
            methods=["GET"],
            name="routing",
        ),
        Route(
            "/api/v2/routing/queues/{queueId}/members",
            routing.queue_members,
            methods=["GET"],
            name="routing",
        ),
        Route("/api/v2/routing/wrapupcodes", routing.list_codes, methods=["GET"], name="routing"),
        Route(
            "/api/v2/routing/wrapupcodes/{codeId}",
            routing.get_code,
            methods=["GET"],
            name="routing",
        ),
        *groups.routes(),
        *notifications.routes(),
    ]


class GenesysMiddleware:
    """Counts, rate-limits and fault-injects each request; adds Genesys headers; never leaks a 500.

    Any unexpected exception becomes a 500 ErrorBody and is logged and counted
    (``/_emulator/requests`` → ``internalErrors``), so tests can prove bad input never gets here.
    """

    def __init__(self, app: ASGIApp, *, state: EmulatorState, routes: list[BaseRoute]) -> None:
        self.app = app
        self.state = state
        self.routes = routes

    def _match(self, scope: Scope) -> tuple[str, str | None]:
        partial: tuple[str, str | None] | None = None
        for route in self.routes:
            if not isinstance(route, Route):
                continue
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route.path, route.name
            if match is Match.PARTIAL and partial is None:
                partial = (route.path, route.name)
        return partial or (UNMATCHED_ROUTE, None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        extra = {CORRELATION_HEADER: headers.get(CORRELATION_HEADER.lower()) or str(uuid.uuid4())}
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = dict(message)
                message["headers"] = [
                    *message.get("headers", []),
                    *((k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()),
                    # The platform's own clock: simulated time, which runs ahead at speed > 1.
                    (b"date", format_datetime(state.clock.moment(), usegmt=True).encode()),
                ]
            await send(message)

        try:
            if not scope["path"].startswith(ADMIN_PREFIX):
                error = await self._before(scope, headers, extra)
                if error is not None:
                    await error.response()(scope, receive, send_with_headers)
                    return
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            # The client went away before its request was read: nobody is left to answer, and
            # it is not the emulator's fault.
            state.client_disconnects += 1
            logger.debug("emulator: client left during %s %s", scope["method"], scope["path"])
        except Exception:
            state.internal_errors += 1
            logger.exception("emulator: unexpected error on %s %s", scope["method"], scope["path"])
            if not started:
                await ApiError(500).response()(scope, receive, send_with_headers)

    async def _before(
        self, scope: Scope, headers: dict[str, str], extra: dict[str, str]
    ) -> ApiError | None:
        """Count, rate-limit and apply faults; an ApiError means answer it instead."""
        state = self.state
        template, route_name = self._match(scope)
        state.requests[f"{scope['method']} {template}"] += 1
        key, label = state.rate_key(headers.get("authorization"))
        decision = state.rate_limiter.hit(key, route_name, label=label)
        extra.update(decision.headers())
        if not decision.allowed:
            return ApiError(
                429,
                "too.many.requests",
                f"Rate limit exceeded the maximum. [{decision.limit} requests per window]",
                limit={
                    "key": route_name or "default",
                    "namespace": "platform.api",
                    "value": decision.limit,
                },
            )
        refused = unsupported_media(scope["method"], scope["path"], headers)
        if refused is not None:
            return refused
        for fault in state.faults.draw(route_name):
            spec = fault.spec
            if spec.mode == "latency":
                state.faults.record(fault, method=scope["method"], path=scope["path"])
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(spec.seconds):
                        await state.stopping.wait()
            elif spec.mode == "status":
                state.faults.record(fault, method=scope["method"], path=scope["path"])
                return spec.error()
            else:
                # A create-call fault: the handler applies it (and records it) once the body is
                # read and valid, or gives it back.
                scope[FAULT_SCOPE_KEY] = fault
        return None


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return ApiError(
            404, "not.found", f"No resource at {request.method} {request.url.path}."
        ).response()
    return ApiError(exc.status_code, headers=dict(exc.headers or {})).response()


def create_app(
    config: EmulatorConfig | None = None, *, fixture: Fixture | None = None
) -> Starlette:
    """Build the emulator's ASGI app; ``app.state.emulator`` is its ``EmulatorState``.

    The fixture is loaded from ``config.fixture`` (or the built-in one) unless given.
    """
    config = config or EmulatorConfig()
    state = EmulatorState(config, fixture or load_fixture(config.fixture))
    network = TelephoneNetwork(state)
    notifications = NotificationService(state)
    routes = api_routes(notifications)
    if config.admin:
        routes += admin_routes() + notifications.admin_routes()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        state.stopping.set()
        await notifications.close_all()
        await network.stop_all()

    app = Starlette(
        routes=routes,
        middleware=[Middleware(GenesysMiddleware, state=state, routes=routes)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.emulator = state
    app.state.network = network
    app.state.notifications = notifications
    return app
