"""What every route declares: who is calling (one principal, by Bearer key or page session), the
service parts it uses, and the error answers the OpenAPI document lists.

(No ``from __future__ import annotations``: FastAPI reads these annotations at run time.)
"""

from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gcdial.serve.campaigns import CampaignManager
from gcdial.serve.dials import Dials
from gcdial.serve.following import CallFollower
from gcdial.serve.principal import COOKIE_NAME, SAFE_METHODS, Authenticator, Principal
from gcdial.serve.problems import ApiProblem, ErrorBody
from gcdial.serve.review import Reviews
from gcdial.serve.service import DialService
from gcdial.serve.service_core import ServiceCore
from gcdial.serve.session import WIDGET_EXPIRES_STATE, WIDGET_TOKEN_PREFIX
from gcdial.serve.webhook_delivery import WebhookDelivery

__all__ = [
    "ERRORS",
    "Auth",
    "Caller",
    "Campaigns",
    "DialPart",
    "FollowPart",
    "MaybeCaller",
    "ReviewDesk",
    "Service",
    "WebhookPart",
    "current_principal",
    "errors_with",
]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": why}
    for code, why in {
        400: "Bad request (malformed JSON, missing or bad header)",
        401: "Missing or unknown API key, or no page session",
        403: "The key may not do this (scope, agent, or the page's CSRF token)",
        404: "Not found",
        413: "Request too large",
        422: "Invalid body or parameters",
        429: "Rate limit of the key exceeded",
    }.items()
}


def errors_with(**more: str) -> dict[int | str, dict[str, Any]]:
    """``ERRORS`` plus route-specific ones, e.g. ``errors_with(e409="Key in use")``."""
    extra: dict[int | str, dict[str, Any]] = {
        int(k[1:]): {"model": ErrorBody, "description": v} for k, v in more.items()
    }
    return {**ERRORS, **extra}


_bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `gcdial serve keys create` (the page uses its session cookie).",
)


# The dependencies that only fetch a part of the app are ``async def``: FastAPI runs a plain
# ``def`` dependency in a worker thread, a thread hop on every request for nothing.


def _auth_of(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


async def _auth(request: Request) -> Authenticator:
    return _auth_of(request)


Auth = Annotated[Authenticator, Depends(_auth)]


async def _identify(
    request: Request, credentials: HTTPAuthorizationCredentials | None, csrf: str | None
) -> Principal | None:
    auth = _auth_of(request)
    if credentials is not None and credentials.credentials.startswith(WIDGET_TOKEN_PREFIX):
        principal = await auth.from_widget_token(
            credentials.credentials,
            request.headers.get("origin"),
            safe=request.method in SAFE_METHODS,
        )
        if principal.session is not None:
            left = principal.session.expires_at - auth.service.clock()
            setattr(request.state, WIDGET_EXPIRES_STATE, max(0, int(left)))
    elif credentials is not None:
        principal = await auth.from_bearer(credentials.credentials)
    else:
        cookie = request.cookies.get(COOKIE_NAME)
        if cookie is None:
            return None
        unsafe = request.method not in SAFE_METHODS
        principal = await auth.from_cookie(cookie, csrf, unsafe=unsafe)
    if principal.session is None or request.method not in SAFE_METHODS:
        # Every API request and every page or widget action; not the page's and the widget's
        # own reads, which follow each event or poll a call (a wallboard's key, or an agent's
        # on a long call, would otherwise run dry).
        auth.admit(principal)
    return principal


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
CsrfHeader = Annotated[str | None, Header(alias="X-CSRF-Token", include_in_schema=False)]


async def current_principal(
    request: Request, credentials: Credentials, csrf: CsrfHeader = None
) -> Principal:
    """The caller: a Bearer API key, or the page's session cookie (with its CSRF token on any
    request that changes something); rate-limited per key either way."""
    principal = await _identify(request, credentials, csrf)
    if principal is None:
        raise ApiProblem(
            401,
            "unauthorized",
            "This API needs an API key: Authorization: Bearer <key>.",
            hint="Create one with `gcdial serve keys create --name <name>`.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


async def optional_principal(
    request: Request, credentials: Credentials, csrf: CsrfHeader = None
) -> Principal | None:
    """The caller if it presented a credential (a wrong one is still a 401), else None."""
    return await _identify(request, credentials, csrf)


Caller = Annotated[Principal, Depends(current_principal)]
MaybeCaller = Annotated[Principal | None, Depends(optional_principal)]


def _parts(request: Request) -> DialService:
    service: DialService = request.app.state.service
    return service


async def _service(request: Request) -> ServiceCore:
    return _parts(request).core


async def _dials(request: Request) -> Dials:
    return _parts(request).dials


async def _follower(request: Request) -> CallFollower:
    return _parts(request).follower


async def _webhooks(request: Request) -> WebhookDelivery:
    return _parts(request).webhooks


async def _campaigns(request: Request) -> CampaignManager:
    campaigns: CampaignManager = request.app.state.campaigns
    return campaigns


async def _reviews(request: Request) -> Reviews:
    reviews: Reviews = request.app.state.reviews
    return reviews


# The service's shared core (store, clock, client, publish, audit...), and its parts.
Service = Annotated[ServiceCore, Depends(_service)]
DialPart = Annotated[Dials, Depends(_dials)]
FollowPart = Annotated[CallFollower, Depends(_follower)]
WebhookPart = Annotated[WebhookDelivery, Depends(_webhooks)]
Campaigns = Annotated[CampaignManager, Depends(_campaigns)]
ReviewDesk = Annotated[Reviews, Depends(_reviews)]
