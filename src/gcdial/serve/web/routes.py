"""The supervisors' page: sign-in, the HTML page, its JSON endpoints and its event stream.

Mounted on the service's app by ``mount_page``. The page's endpoints live under ``/page`` and stay
out of the OpenAPI document: they are the page's, not a public API. They act through the same
``DialService`` and store as ``/v1`` (the same idempotency claim before a dial, the same audit
log, the same event log), authenticated by the session cookie instead of a Bearer key.

(No ``from __future__ import annotations``: FastAPI reads the route signatures, which use names
local to ``mount_page``.)
"""

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from sse_starlette import EventSourceResponse
from starlette.staticfiles import StaticFiles

from gcdial.errors import GcdialError, InvalidPhoneNumberError, NotFoundError
from gcdial.serve.campaigns import CampaignManager
from gcdial.serve.models import CallRequest
from gcdial.serve.params import MAX_EVENT_ID, event_cursor
from gcdial.serve.problems import ApiProblem
from gcdial.serve.review import Reviews
from gcdial.serve.service import DialService, call_json, event_visible
from gcdial.serve.store import ApiKeyRecord, CallRecord, hash_api_key
from gcdial.serve.web.campaign_routes import campaign_router
from gcdial.serve.web.review_routes import add_review_routes
from gcdial.serve.web.session import (
    COOKIE_NAME,
    Session,
    csrf_token,
    load_secret,
    new_session,
    read_session,
    seal,
)
from gcdial.serve.web.views import call_view, number_preview, step_of

__all__ = ["DEFAULT_SESSION_S", "mount_page"]

DEFAULT_SESSION_S = 8 * 3600.0
_MAX_AGENTS = 50
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes the Origin header "null"
    "Cache-Control": "no-store",
}


def _may(key: ApiKeyRecord, scope: str) -> bool:
    return scope in key.scopes or "admin" in key.scopes


def mount_page(
    app: FastAPI,
    service: DialService,
    *,
    campaigns: CampaignManager | None = None,
    session_s: float = DEFAULT_SESSION_S,
    secret: bytes | None = None,
    reviews: Reviews | None = None,
) -> None:
    """Serve the page at ``/`` and its endpoints under ``/page`` on ``app``."""
    store = service.store
    clock: Callable[[], float] = service.clock
    store_path = getattr(store, "path", None)
    signing = secret or load_secret(store_path if isinstance(store_path, Path) else None)
    templates = Environment(
        loader=PackageLoader("gcdial.serve.web", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    router = APIRouter(include_in_schema=False)

    def html(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = templates.get_template(name).render(**context)
        return HTMLResponse(body, status, headers=_SECURITY_HEADERS)

    async def key_by_id(key_id: str) -> ApiKeyRecord | None:
        for record in await service.db(store.list_api_keys):
            if record.id == key_id and record.revoked_at is None:
                return record
        return None

    async def signed_in(request: Request) -> tuple[Session, ApiKeyRecord]:
        """The session and its (still valid) key, or a 401 saying what to do."""
        session = read_session(request.cookies.get(COOKIE_NAME), signing)
        if session is None:
            raise ApiProblem(
                401,
                "signed_out",
                "You are not signed in.",
                hint="Sign in with an API key that has the watch scope.",
            )
        if session.expires_at <= clock():
            raise ApiProblem(401, "session_expired", "Your session expired.", hint="Sign in again.")
        key = await key_by_id(session.key_id)
        if key is None:
            raise ApiProblem(
                401,
                "key_revoked",
                "The API key you signed in with was revoked.",
                hint="Sign in with another key (gcdial serve keys list shows the active ones).",
            )
        if not _may(key, "watch"):
            raise ApiProblem(403, "forbidden", "This API key lacks the 'watch' scope.")
        return session, key

    Viewer = Annotated[tuple[Session, ApiKeyRecord], Depends(signed_in)]

    def act(viewer: tuple[Session, ApiKeyRecord], csrf: str | None, scope: str) -> ApiKeyRecord:
        """An action: the CSRF token of the session, and ``scope`` on its key."""
        session, key = viewer
        if csrf is None or csrf != csrf_token(session, signing):
            raise ApiProblem(
                403,
                "csrf_failed",
                "This action did not carry the page's CSRF token.",
                hint="Reload the page and try again.",
            )
        if not _may(key, scope):
            raise ApiProblem(
                403,
                "forbidden",
                f"Your API key lacks the '{scope}' scope, so this page cannot do that.",
                hint=f"Sign in with a key created with --scopes including {scope}.",
            )
        return key

    Csrf = Annotated[str | None, Header(alias="X-CSRF-Token")]

    async def key_names() -> dict[str, str]:
        return {r.id: r.name for r in await service.db(store.list_api_keys)}

    async def progress_of(call_id: str) -> list[dict[str, Any]]:
        events = await service.db(store.events_after, 0, call_id=call_id, limit=500)
        return [json.loads(e.data).get("progress", {}) for e in events if e.type == "call.progress"]

    async def view(call: CallRecord, names: dict[str, str]) -> dict[str, Any]:
        return call_view(call_json(call), await progress_of(call.id), names.get(call.api_key_id))

    async def own_call(key: ApiKeyRecord, call_id: str) -> CallRecord:
        call = await service.db(store.get_call, call_id)
        if call is None or not service.owns(key, call):
            raise ApiProblem(404, "not_found", f"No call {call_id!r}.")
        return call

    @router.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> Response:
        try:
            session, key = await signed_in(request)
        except ApiProblem as problem:
            message = None if problem.detail.type == "signed_out" else problem.detail.message
            return html("signin.html", message=message)
        return html(
            "page.html",
            key=key,
            csrf=csrf_token(session, signing),
            can_dial=_may(key, "dial"),
            can_campaigns=campaigns is not None and _may(key, "campaigns"),
            agents=list(key.agents),
        )

    @router.post("/page/signin")
    async def sign_in(request: Request, key: Annotated[str, Form(max_length=200)] = "") -> Response:
        origin = request.headers.get("origin")
        if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
            # A sign-in form posted from another site (login CSRF).
            return html("signin.html", 403, message="Sign in from this page, not another site.")
        record = await service.db(store.find_api_key, hash_api_key(key.strip())) if key else None
        if record is None:
            return html(
                "signin.html",
                401,
                message="That API key is not known or was revoked.",
                hint="Paste a key from `gcdial serve keys create`; it is never shown again.",
            )
        if not _may(record, "watch"):
            return html(
                "signin.html",
                403,
                message="That API key lacks the 'watch' scope, which the page needs.",
                hint="Create one with --scopes watch (add dial to place calls from the page).",
            )
        session = new_session(record.id, now=clock(), lifetime_s=session_s)
        answer = RedirectResponse("/", status_code=303, headers={"Cache-Control": "no-store"})
        answer.set_cookie(
            COOKIE_NAME,
            seal(session, signing),
            max_age=int(session_s),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        await service.audit(record.id, "page.signin", "ok")
        return answer

    @router.post("/page/signout")
    async def sign_out(viewer: Viewer, csrf: Csrf = None) -> Response:
        act(viewer, csrf, "watch")
        answer = JSONResponse({"signedOut": True})
        answer.delete_cookie(COOKIE_NAME, path="/")
        return answer

    @router.get("/page/api/session")
    async def whoami(viewer: Viewer) -> dict[str, Any]:
        session, key = viewer
        return {
            "key": {"id": key.id, "name": key.name, "scopes": list(key.scopes)},
            "expiresAt": session.expires_at,
        }

    @router.get("/page/api/calls")
    async def calls(
        viewer: Viewer,
        agent: Annotated[str | None, Query(max_length=200)] = None,
        outcome: Annotated[str | None, Query(max_length=40)] = None,
        since_minutes: Annotated[int | None, Query(alias="sinceMinutes", ge=1, le=10080)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        source: Annotated[str | None, Query(pattern="^(api|campaign)?$")] = None,
    ) -> dict[str, Any]:
        _, key = viewer
        last = await service.db(store.last_event_id)
        since = clock() - since_minutes * 60 if since_minutes else None
        found = await service.db(
            store.list_calls,
            agent=agent or None,
            since=since,
            api_key_id=None if "admin" in key.scopes else key.id,
            limit=limit if not outcome else 500,
            source=source or None,
        )
        if outcome:
            found = [c for c in found if (c.outcome or c.status) == outcome][:limit]
        names = await key_names()
        return {"calls": [await view(c, names) for c in found], "lastEventId": last}

    @router.get("/page/api/agents")
    async def agents(viewer: Viewer) -> dict[str, Any]:
        """Readiness of the key's agents, else of the agents of its recent calls."""
        _, key = viewer
        wanted = list(key.agents)
        if not wanted:
            recent = await service.db(
                store.list_calls, api_key_id=None if "admin" in key.scopes else key.id, limit=200
            )
            wanted = list(dict.fromkeys(c.agent for c in recent))
        found = await asyncio.gather(*(service.agent_state(a) for a in wanted[:_MAX_AGENTS]))
        states = [state.model_dump(exclude_none=True) for state in found]
        # From now on their presence changes come as agent.updated events (while "live").
        await service.presence.watch({s["id"]: s["agent"] for s in states if s.get("id")})
        live = service.presence.live
        return {
            "agents": states,
            "presence": {"live": live, "pollSeconds": service.config.presence_poll_s},
        }

    @router.get("/page/api/number")
    async def number(
        viewer: Viewer,
        to: Annotated[str, Query(max_length=64)],
        country: Annotated[str, Query(pattern="^[A-Za-z]{2}$")] = "US",
    ) -> dict[str, Any]:
        try:
            return number_preview(to, country.upper(), dt.datetime.now(dt.UTC))
        except InvalidPhoneNumberError as exc:
            raise ApiProblem(
                422, "invalid_number", exc.message, hint=exc.hint, path="$.to"
            ) from None

    @router.post("/page/api/calls", status_code=202)
    async def dial(
        request: CallRequest,
        viewer: Viewer,
        csrf: Csrf = None,
        idem: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
    ) -> JSONResponse:
        key = act(viewer, csrf, "dial")
        if not idem:
            raise ApiProblem(400, "idempotency_key_missing", "The page sent no Idempotency-Key.")
        if key.agents and request.agent.lower() not in key.agents:
            raise ApiProblem(
                403,
                "agent_not_allowed",
                f"Your API key may not dial for agent {request.agent!r}.",
                path="$.agent",
            )
        answer = await service.create_call(key, "page:" + idem, request)
        if answer.kind == "mismatch":
            raise ApiProblem(422, "idempotency_key_reused", "This form was already sent with "
                             "other values; reload the page.")  # fmt: skip
        if answer.kind == "in_progress":
            raise ApiProblem(
                409,
                "idempotency_key_in_progress",
                "This call is still being placed.",
                headers={"Retry-After": "1"},
            )
        return JSONResponse(answer.body, 202)

    @router.post("/page/api/calls/{call_id}/hangup", status_code=202)
    async def hang_up(call_id: str, viewer: Viewer, csrf: Csrf = None) -> dict[str, Any]:
        key = act(viewer, csrf, "dial")
        call = await own_call(key, call_id)
        if call.conversation_id is None or call.outcome is not None:
            raise ApiProblem(409, "not_connected", "This call has no live conversation to end.")
        try:
            await service.hang_up(key, call)
        except NotFoundError:
            raise ApiProblem(409, "not_connected", "The conversation is already over.") from None
        except GcdialError as exc:
            raise ApiProblem(502, "genesys_error", exc.message, hint=exc.hint) from None
        return call_json(call)

    add_review_routes(router, service, reviews or Reviews(service, campaigns), signed_in=signed_in,
                      act=act, may=_may, view=view, key_names=key_names)  # fmt: skip

    @router.get("/page/events")
    async def events(
        request: Request,
        viewer: Viewer,
        after: Annotated[int | None, Query(ge=0, le=MAX_EVENT_ID)] = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> EventSourceResponse:
        """The page's live feed: the service's event log, resumed after Last-Event-ID."""
        session, key = viewer
        start = after if after is not None else service.hub.last_id
        cursor = event_cursor(last_event_id, where="header:Last-Event-ID")
        if cursor is not None:
            start = cursor
        names = await key_names()

        async def feed() -> AsyncIterator[dict[str, Any]]:
            last = start
            yield {"event": "hello", "data": json.dumps({"resumedAfter": start}), "retry": 1000}
            service.metrics.sse_streams.inc()
            try:
                while True:
                    batch = await service.db(store.events_after, last)
                    for event in batch:
                        last = event.id
                        data = json.loads(event.data)
                        if not event_visible(data, key):
                            continue
                        yield {"id": str(event.id), "event": event.type,
                               "data": json.dumps(_page_event(data, names))}  # fmt: skip
                    if batch:
                        continue
                    if not await service.hub.wait_beyond(last, service.config.sse_ping_s):
                        ended = await _session_problem(session)
                        if ended is not None:
                            yield {"event": "session", "data": json.dumps(ended)}
                            return
            finally:
                service.metrics.sse_streams.dec()

        async def _session_problem(session: Session) -> dict[str, str] | None:
            if session.expires_at <= clock():
                return {"type": "session_expired", "message": "Your session expired."}
            if await key_by_id(session.key_id) is None:
                return {"type": "key_revoked", "message": "Your API key was revoked."}
            return None

        return EventSourceResponse(
            feed(),
            ping=int(service.config.sse_ping_s),
            send_timeout=service.config.sse_send_timeout_s,
            headers={"Cache-Control": "no-store"},
        )

    router.include_router(campaign_router(campaigns, signed_in, act))
    app.include_router(router)
    app.mount("/page/static", StaticFiles(packages=[("gcdial.serve.web", "static")]), "static")


def _page_event(data: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A service event as the page gets it: the step named, the placing key's name, no key id."""
    key_id = data.pop("apiKeyId", None)
    progress = data.get("progress")
    if isinstance(progress, dict):
        data["step"] = step_of(progress)
    data["keyName"] = names.get(key_id or "")
    return data
