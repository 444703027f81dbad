"""Agents' sign-in with Genesys Cloud (the page's and the widget's) and the widget's script.

- ``GET /auth/genesys/start``: the page's "Sign in with Genesys Cloud"; ends with the page's
  session cookie for the agent.
- ``GET /widget/signin?origin=O``: the same in the widget's pop-up, for the CRM origin ``O``
  (an allowed one); ends by posting a short-lived widget token to ``O`` only
  (``postMessage``), then closing.
- ``GET /auth/genesys/callback``: where the login host sends the browser back, both ways.
- ``GET /widget.js``: the click-to-dial widget, one script; ``GET /widget/hello``: whether the
  calling origin may use it (readable from any origin, so a refused CRM page can say why).

The browser never sees a Genesys token (the service drops it once it knows who signed in) nor
an API key. (No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

import hmac
import secrets
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from gcdial.serve.config import ServeConfig, origin_of
from gcdial.serve.genesys_signin import (
    CALLBACK_PATH,
    GenesysSignIn,
    SignInRefused,
    authorize_url,
    new_pkce,
    signin_refusal,
)
from gcdial.serve.principal import COOKIE_NAME, Authenticator
from gcdial.serve.routes.deps import Auth, Service
from gcdial.serve.service_core import ServiceCore
from gcdial.serve.session import PENDING_COOKIE, PendingSignIn, read_pending, seal_pending
from gcdial.serve.web.templating import TEMPLATES

__all__ = ["router"]

PENDING_S = 600.0
_PENDING_PATH = "/auth/genesys"
_FORBIDDEN = frozenset({"agent_revoked", "user_inactive", "consent_denied", "genesys_refused"})
_WIDGET_JS = (files("gcdial.serve.web") / "static" / "widget.js").read_bytes()

router = APIRouter(include_in_schema=False)


def _headers(config: ServeConfig, *, framed_by_crm: bool = False) -> dict[str, str]:
    """The page's security headers; the widget's sign-in pages may be framed by allowed CRMs."""
    ancestors = " ".join(config.widget_origins) if framed_by_crm else ""
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; "
        f"frame-ancestors {ancestors or chr(39) + 'none' + chr(39)}"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def _render(name: str, config: ServeConfig, status: int = 200, **context: Any) -> HTMLResponse:
    body = TEMPLATES.get_template(name).render(**context)
    widget = bool(context.get("widget"))
    return HTMLResponse(body, status, headers=_headers(config, framed_by_crm=widget))


def _public_url(request: Request, config: ServeConfig) -> str:
    return config.public_url or f"{request.url.scheme}://{request.url.netloc}"


def _refused_popup(config: ServeConfig, status: int, message: str, origin: str) -> HTMLResponse:
    """The pop-up's page when the sign-in did not happen: says why, and tells the widget."""
    result = {"type": "gcdial:signin", "ok": False, "message": message}
    return _render(
        "agent_signin.html",
        config,
        status,
        widget=True,
        message=message,
        result={"origin": origin, "message": result} if origin else None,
    )


def _refused_page(config: ServeConfig, status: int, message: str) -> HTMLResponse:
    return _render(
        "signin.html",
        config,
        status,
        message=message,
        hint="Try again, or sign in with an API key.",
        genesys=config.signin_enabled,
    )


def _start(request: Request, service: ServiceCore, auth: Authenticator, origin: str) -> Response:
    """Send the browser to the login host, remembering the verifier in a signed cookie."""
    config = service.config
    verifier, challenge = new_pkce()
    state = secrets.token_urlsafe(24)
    pending = PendingSignIn(state, verifier, origin, service.clock() + PENDING_S)
    assert config.signin_client_id is not None
    target = authorize_url(
        service.client.settings.endpoints().login_base_url,
        config.signin_client_id,
        _public_url(request, config) + CALLBACK_PATH,
        challenge,
        state,
    )
    answer = RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})
    answer.set_cookie(
        PENDING_COOKIE,
        seal_pending(pending, auth.secret),
        max_age=int(PENDING_S),
        httponly=True,
        samesite="lax",  # sent on the login host's redirect back (a top-level GET)
        secure=request.url.scheme == "https",
        path=_PENDING_PATH,
    )
    return answer


@router.get("/auth/genesys/start")
async def start_page_signin(request: Request, service: Service, auth: Auth) -> Response:
    """The page's "Sign in with Genesys Cloud"."""
    if not service.config.signin_enabled:
        return _refused_page(service.config, 404, "Sign-in with Genesys Cloud is not set up.")
    return _start(request, service, auth, "")


@router.get("/widget/signin")
async def start_widget_signin(
    request: Request,
    service: Service,
    auth: Auth,
    origin: Annotated[str, Query(max_length=300)] = "",
) -> Response:
    """The widget's pop-up: only for an allowed CRM origin."""
    config = service.config
    if origin_of(origin) != origin or origin not in config.widget_origins:
        return _refused_popup(
            config,
            403,
            f"gcdial does not allow click-to-dial on {origin or 'this page'}: the service's "
            "administrator must add it to the allowed widget origins.",
            "",
        )
    if not config.signin_enabled:
        return _refused_popup(config, 404, "Sign-in with Genesys Cloud is not set up.", origin)
    return _start(request, service, auth, origin)


@router.get(CALLBACK_PATH)
async def finish_signin(
    request: Request,
    service: Service,
    auth: Auth,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    state: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=100)] = None,
    error_description: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Where the login host sends the browser back: redeem the code, learn who signed in, then
    give them a session (the page's cookie, or the widget's token posted to its origin)."""
    config = service.config
    pending = read_pending(request.cookies.get(PENDING_COOKIE), auth.secret)
    origin = pending.origin if pending is not None else ""
    try:
        if pending is None or state is None or not hmac.compare_digest(state, pending.state):
            raise SignInRefused(
                "state_mismatch",
                "This sign-in was not started here, or in another window: start it again.",
            )
        if pending.expires_at <= service.clock():
            raise SignInRefused("expired", "The sign-in took too long: start it again.")
        if origin and origin not in config.widget_origins:
            raise SignInRefused("origin_not_allowed", f"{origin} is no longer allowed.")
        if error is not None:
            raise signin_refusal(error, error_description)
        if not code or not config.signin_client_id:
            raise SignInRefused("no_code", "Genesys Cloud sent no sign-in code back.")
        endpoints = service.client.settings.endpoints()
        genesys = GenesysSignIn(
            service.client.http,
            login_base_url=endpoints.login_base_url,
            api_base_url=endpoints.api_base_url,
            client_id=config.signin_client_id,
            client_secret=config.signin_client_secret,
        )
        redirect_uri = _public_url(request, config) + CALLBACK_PATH
        token = await genesys.exchange(code, pending.verifier, redirect_uri)
        user = await genesys.who(token)
        del token  # never kept: the service dials with its own credentials
        key = await auth.agent_key(user)
    except SignInRefused as refused:
        await service.audit("-", "agent.signin", refused.kind)
        status = 403 if refused.kind in _FORBIDDEN else 400
        refusal = (
            _refused_popup(config, status, refused.message, origin)
            if origin
            else _refused_page(config, status, refused.message)
        )
        refusal.delete_cookie(PENDING_COOKIE, path=_PENDING_PATH)
        return refusal
    answer: Response
    await service.audit(key.id, "agent.signin", "ok")
    if origin:
        session = await auth.sign_in(key, lifetime_s=config.widget_session_s, origin=origin)
        message = {
            "type": "gcdial:signin",
            "ok": True,
            "token": auth.seal_widget(session),
            "expiresAt": session.expires_at,
            # The browser's clock may differ from the service's: the widget counts from now.
            "expiresIn": max(0, int(int(session.expires_at) - service.clock())),  # as sealed
            "agent": {"email": user.email.lower(), "name": user.name},
        }
        answer = _render(
            "agent_signin.html",
            config,
            widget=True,
            message=f"Signed in as {user.name}. You can close this window.",
            result={"origin": origin, "message": message},
        )
    else:
        session = await auth.sign_in(key, lifetime_s=config.agent_session_s)
        answer = RedirectResponse("/", status_code=303, headers={"Cache-Control": "no-store"})
        answer.set_cookie(
            COOKIE_NAME,
            auth.seal(session),
            max_age=int(config.agent_session_s),
            httponly=True,
            samesite="lax",  # this answer ends a redirect chain that began at the login host
            secure=request.url.scheme == "https",
            path="/",
        )
    answer.delete_cookie(PENDING_COOKIE, path=_PENDING_PATH)
    return answer


@router.get("/widget.js")
async def widget_js() -> Response:
    """The click-to-dial widget (one script, no dependency)."""
    return Response(
        _WIDGET_JS,
        media_type="text/javascript",
        headers={
            "Cache-Control": "max-age=300",
            "X-Content-Type-Options": "nosniff",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


@router.get("/widget/hello")
async def widget_hello(request: Request, service: Service) -> Response:
    """Whether the calling page's origin may use the widget (any origin may read the answer)."""
    config = service.config
    origin = request.headers.get("origin", "")
    allowed = origin in config.widget_origins
    message = (
        None
        if allowed
        else f"gcdial does not allow click-to-dial on {origin or 'this page'}: the service's "
        "administrator must add it to the allowed widget origins."
    )
    body = {"allowed": allowed, "signIn": config.signin_enabled, "message": message}
    return JSONResponse(
        body,
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store", "Vary": "Origin"},
    )
