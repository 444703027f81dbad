"""The supervisors' page: sign-in, sign-out, the HTML page, its static files, the number preview.

Everything else the page shows or does goes through the ``/v1`` handlers
(:mod:`gcdial.serve.routes`), reached with the session cookie and, for actions, the CSRF token in
``X-CSRF-Token``: the same checks, rate limit, audit log and event stream as an API key's.

(No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

import datetime as dt
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.staticfiles import StaticFiles

from gcdial.errors import InvalidPhoneNumberError
from gcdial.serve.principal import COOKIE_NAME, Principal
from gcdial.serve.problems import ApiProblem
from gcdial.serve.routes.deps import ERRORS, Auth, Caller, Service
from gcdial.serve.store import hash_api_key
from gcdial.serve.web.signin import router as signin_router
from gcdial.serve.web.templating import TEMPLATES
from gcdial.serve.web.views import number_preview

__all__ = ["mount_page", "router"]

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes the Origin header "null"
    "Cache-Control": "no-store",
}


class SignedOut(BaseModel):
    """The answer of a sign-out."""

    signedOut: bool


class SessionKey(BaseModel):
    """The key a session is signed in with."""

    id: str
    name: str
    scopes: list[str]


class WhoAmI(BaseModel):
    """Who is calling: the key, and when the page session ends (None for a Bearer key)."""

    key: SessionKey
    expiresAt: float | None = None


class LocalTime(BaseModel):
    """The time now in one of the number's time zones."""

    zone: str
    localTime: str
    weekday: str


class NumberPreview(BaseModel):
    """A number as it will be dialed."""

    e164: str
    region: str
    country: str
    place: str | None = None
    international: str
    zones: list[LocalTime]


# In the OpenAPI document (tag "page"), so the property test drives them too; the HTML is not.
router = APIRouter(tags=["page"])
_HTML: dict[int | str, dict[str, Any]] = {
    code: {"content": {"text/html": {}}, "description": why}
    for code, why in {
        303: "Signed in: the session cookie is set, go to the page",
        401: "The key is not known or was revoked (the sign-in form, saying so)",
        403: "The key lacks the watch scope, or the form came from another site",
    }.items()
}


def _html(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    body = TEMPLATES.get_template(name).render(**context)
    return HTMLResponse(body, status, headers=_SECURITY_HEADERS)


_FAVICON = (files("gcdial.serve.web") / "static" / "favicon.ico").read_bytes()


@router.get("/favicon.ico", include_in_schema=False)
async def favicon_ico() -> Response:
    # Browsers ask for it on every page load; without it each load logs a 404.
    return Response(_FAVICON, media_type="image/x-icon", headers={"Cache-Control": "max-age=86400"})


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page(request: Request, auth: Auth) -> Response:
    """The page when signed in, else the sign-in form (saying why when a session ended)."""
    cookie = request.cookies.get(COOKIE_NAME)
    genesys = auth.service.config.signin_enabled
    if cookie is None:
        return _html("signin.html", message=None, genesys=genesys)
    try:
        caller = await auth.from_cookie(cookie, None, unsafe=False)
    except ApiProblem as problem:
        message = None if problem.detail.type == "signed_out" else problem.detail.message
        return _html("signin.html", message=message, genesys=genesys)
    assert caller.session is not None
    return _html(
        "page.html",
        key=caller.key,
        csrf=auth.csrf(caller.session),
        can_dial=caller.may("dial"),
        can_campaigns=caller.may("campaigns"),
        agents=list(caller.key.agents),
        agent_name=caller.key.extra.get("displayName") if caller.kind == "agent" else None,
    )


@router.post(
    "/page/signin",
    response_class=HTMLResponse,
    responses={**_HTML, 422: ERRORS[422], 413: ERRORS[413]},
    summary="Sign the page in with an API key (form field key); sets the session cookie",
)
async def sign_in(
    request: Request,
    auth: Auth,
    service: Service,
    key: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Exchange an API key (watch scope) for a session cookie; the key is never kept."""
    origin = request.headers.get("origin")
    if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
        # A sign-in form posted from another site (login CSRF).
        return _html(
            "signin.html",
            403,
            message="Sign in from this page, not another site.",
            genesys=service.config.signin_enabled,
        )
    record = (
        await service.db(service.store.find_api_key, hash_api_key(key.strip())) if key else None
    )
    if record is None:
        return _html(
            "signin.html",
            401,
            message="That API key is not known or was revoked.",
            hint="Paste a key from `gcdial serve keys create`; it is never shown again.",
            genesys=service.config.signin_enabled,
        )
    if not Principal(record).may("watch"):
        return _html(
            "signin.html",
            403,
            message="That API key lacks the 'watch' scope, which the page needs.",
            hint="Create one with --scopes watch (add dial to place calls from the page).",
            genesys=service.config.signin_enabled,
        )
    session = await auth.sign_in(record)
    answer = RedirectResponse("/", status_code=303, headers={"Cache-Control": "no-store"})
    answer.set_cookie(
        COOKIE_NAME,
        auth.seal(session),
        max_age=int(auth.session_s),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    await service.audit(record.id, "page.signin", "ok")
    return answer


@router.post(
    "/page/signout",
    response_model=SignedOut,
    responses=ERRORS,
    summary="End the page's session in the store (every copy of its cookie stops working)",
)
async def sign_out(caller: Caller, auth: Auth) -> Response:
    """End the session in the store (every copy of the cookie stops working), then the cookie."""
    if caller.session is not None:
        await auth.sign_out(caller.session)
    answer = JSONResponse({"signedOut": True})
    answer.delete_cookie(COOKIE_NAME, path="/")
    return answer


@router.get(
    "/page/session",
    response_model=WhoAmI,
    responses=ERRORS,
    summary="Who the page is signed in as, and until when",
)
async def whoami(caller: Caller) -> dict[str, Any]:
    """Who the page is signed in as, and until when (a 401 once the session ended)."""
    return {
        "key": {"id": caller.key.id, "name": caller.key.name, "scopes": list(caller.key.scopes)},
        "expiresAt": caller.session.expires_at if caller.session is not None else None,
    }


@router.get(
    "/page/number",
    response_model=NumberPreview,
    responses=ERRORS,
    summary="A number as it will be dialed: E.164, country, place, local time there",
)
async def number(
    caller: Caller,
    to: Annotated[str, Query(max_length=64)],
    country: Annotated[str, Query(pattern="^[A-Za-z]{2}$")] = "US",
) -> dict[str, Any]:
    """The number as it will be dialed: E.164, country, place and the local time there."""
    caller.need("watch")
    try:
        return number_preview(to, country.upper(), dt.datetime.now(dt.UTC))
    except InvalidPhoneNumberError as exc:
        fix = exc.country_from(f"the Country box, now {country.upper()}").hint
        raise ApiProblem(422, "invalid_number", exc.message, hint=fix, path="$.to") from None


def mount_page(app: FastAPI) -> None:
    """Serve the page at ``/``, its sign-in routes under ``/page`` and its static files."""
    app.include_router(router)
    app.include_router(signin_router)
    app.mount("/page/static", StaticFiles(packages=[("gcdial.serve.web", "static")]), "static")
