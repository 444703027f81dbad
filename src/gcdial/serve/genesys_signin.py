"""Agents sign in with Genesys Cloud: the authorization-code grant with PKCE (S256).

The service is the OAuth client. It sends the browser to the org's login host, takes the code
back on ``/auth/genesys/callback``, redeems it with the verifier, and asks
``GET /api/v2/users/me`` who the person is. The Genesys token is then dropped: the service
dials with its own client credentials, and the person gets a session of the service that may
dial only as themselves (an agent key, :func:`agent_key_record`).

    browser ── /auth/genesys/start ──> login host /oauth/authorize (the person signs in)
       <── 302 /auth/genesys/callback?code&state
    service ── POST /oauth/token (code, code_verifier) ──> access token (kept in memory only)
    service ── GET /api/v2/users/me ──> id, name, email, state ──> agent key + session

The decisions are pure (:func:`new_pkce`, :func:`authorize_url`, :func:`signin_refusal`);
:class:`GenesysSignIn` does the two requests.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from gcdial.serve.store import ApiKeyRecord, hash_api_key

__all__ = [
    "AGENT_KEY_PREFIX",
    "CALLBACK_PATH",
    "GenesysSignIn",
    "GenesysUser",
    "SignInRefused",
    "agent_key_record",
    "authorize_url",
    "is_agent_key",
    "new_pkce",
    "signin_refusal",
]

CALLBACK_PATH = "/auth/genesys/callback"
AGENT_KEY_PREFIX = "agent_"
SIGNIN_TIMEOUT_S = 10.0
# What the login host may send back instead of a code (RFC 6749 4.1.2.1), in people's words.
_OAUTH_ERRORS = {
    "access_denied": "Genesys Cloud refused the sign-in",
    "unauthorized_client": "This service's OAuth client may not sign people in",
    "invalid_request": "Genesys Cloud found the sign-in request invalid",
    "invalid_scope": "Genesys Cloud refused the requested access",
    "server_error": "Genesys Cloud failed while signing you in",
    "temporarily_unavailable": "Genesys Cloud cannot sign you in right now",
}


class SignInRefused(Exception):
    """A sign-in that did not end with a person: ``kind`` for programs, ``message`` for people."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class GenesysUser:
    """Who signed in, as ``GET /api/v2/users/me`` says."""

    id: str
    name: str
    email: str
    state: str


def new_pkce() -> tuple[str, str]:
    """A fresh code verifier (43+ characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(
    login_base_url: str, client_id: str, redirect_uri: str, challenge: str, state: str
) -> str:
    """Where the browser goes to sign in (the contract's ``/oauth/authorize`` query)."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": state,
    }
    return f"{login_base_url.rstrip('/')}/oauth/authorize?{urlencode(query)}"


def signin_refusal(error: str, description: str | None) -> SignInRefused:
    """What the callback says when the login host sent an error instead of a code."""
    lead = _OAUTH_ERRORS.get(error, f"Genesys Cloud answered {error!r}")
    detail = f": {description.strip()[:300]}" if description and description.strip() else "."
    kind = "consent_denied" if error == "access_denied" else "genesys_refused"
    return SignInRefused(kind, lead + detail)


def is_agent_key(key: ApiKeyRecord) -> bool:
    """Whether ``key`` stands for an agent who signed in with Genesys (not a made API key)."""
    return key.extra.get("kind") == "agent"


def agent_key_record(user: GenesysUser, *, now: float) -> ApiKeyRecord:
    """The key an agent's sessions stand on: one per Genesys user (its id is derived from the
    user's), dial and watch, limited to that agent. Its secret is thrown away at once: no
    request can present it; only sessions name it. Revoking it ends the agent's sign-in."""
    key_id = AGENT_KEY_PREFIX + uuid.UUID(user.id).hex
    return ApiKeyRecord(
        id=key_id,
        name=f"agent:{user.email.lower()}",
        key_hash=hash_api_key("unusable:" + secrets.token_urlsafe(32)),
        created_at=now,
        scopes=("dial", "watch"),
        # By email, as the page and the widget name agents (and as --agents keys hold them).
        agents=(user.email.lower(),),
        prefix="",
        extra={"kind": "agent", "genesysUserId": user.id, "displayName": user.name},
    )


class GenesysSignIn:
    """The two requests of a sign-in, on the service's configured HTTP client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        login_base_url: str,
        api_base_url: str,
        client_id: str,
        client_secret: str | None = None,
    ) -> None:
        self.http = http
        self.login_base_url = login_base_url.rstrip("/")
        self.api_base_url = api_base_url.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> str:
        """The access token for ``code``; a :class:`SignInRefused` when Genesys says no."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
        }
        auth = (self.client_id, self._client_secret) if self._client_secret else None
        try:
            answer = await self.http.post(
                f"{self.login_base_url}/oauth/token",
                data=form,
                auth=auth or httpx.USE_CLIENT_DEFAULT,
                timeout=SIGNIN_TIMEOUT_S,
            )
        except httpx.HTTPError:
            raise SignInRefused(
                "genesys_unreachable", "Genesys Cloud's login host could not be reached."
            ) from None
        body = _json(answer)
        token = body.get("access_token")
        if answer.status_code == 200 and isinstance(token, str) and token:
            return token
        error = str(body.get("error") or f"HTTP {answer.status_code}")
        if error == "invalid_client":
            raise SignInRefused(
                "wrong_client",
                "Genesys Cloud does not know this service's OAuth client (check its client id, "
                "secret and region).",
            )
        description = body.get("error_description") or body.get("description")
        raise SignInRefused(
            "code_refused",
            f"Genesys Cloud refused the sign-in code ({error}"
            + (f": {description}" if isinstance(description, str) else "")
            + "). Sign in again.",
        )

    async def who(self, token: str) -> GenesysUser:
        """The person the token belongs to (``GET /api/v2/users/me``)."""
        try:
            answer = await self.http.get(
                f"{self.api_base_url}/api/v2/users/me",
                headers={"Authorization": f"Bearer {token}"},
                timeout=SIGNIN_TIMEOUT_S,
            )
        except httpx.HTTPError:
            raise SignInRefused(
                "genesys_unreachable", "Genesys Cloud could not be asked who you are."
            ) from None
        body = _json(answer)
        fields = (body.get("id"), body.get("email"))
        if answer.status_code != 200 or not all(isinstance(f, str) and f for f in fields):
            raise SignInRefused(
                "user_unknown",
                f"Genesys Cloud did not say who you are (HTTP {answer.status_code}).",
            )
        user = GenesysUser(
            id=str(body["id"]),
            name=str(body.get("name") or body["email"]),
            email=str(body["email"]),
            state=str(body.get("state") or "active"),
        )
        try:
            uuid.UUID(user.id)
        except ValueError:
            raise SignInRefused(
                "user_unknown", "Genesys Cloud gave a user id that is not one."
            ) from None
        if user.state.lower() != "active":
            raise SignInRefused(
                "user_inactive", f"The Genesys Cloud user {user.email} is {user.state}."
            )
        return user


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
