"""The login host's OAuth endpoints: client credentials, and authorization code with PKCE."""

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from gcdial.emulator.fixtures import ClientSpec
from gcdial.emulator.state import EmulatorState

AUTH_CODE_LIFETIME_S = 600.0
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_PKCE_VALUE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def oauth_error(error: str, description: str, *, status: int) -> JSONResponse:
    """The login host's error shape (not an ErrorBody)."""
    body = {"error": error, "description": description, "error_description": description}
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _invalid_client() -> JSONResponse:
    return oauth_error(
        "invalid_client", "client not found or the client secret is wrong", status=401
    )


def _basic_credentials(request: Request) -> tuple[str, str] | bool | None:
    """(id, secret) from a Basic header; None without one; False when it is malformed."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else False


def is_loopback_redirect(uri: str) -> bool:
    """Whether ``uri`` is an http URL on a loopback host (any port, RFC 8252)."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        return False
    return parts.scheme == "http" and host in _LOOPBACK_HOSTS and not parts.fragment


async def token(request: Request) -> Response:
    """``POST /oauth/token``."""
    state: EmulatorState = request.app.state.emulator
    try:
        form = await request.form()
    except Exception:
        return oauth_error("invalid_request", "the body must be form-encoded", status=400)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    basic = _basic_credentials(request)
    if basic is False:
        return _invalid_client()
    client_id, secret = basic if isinstance(basic, tuple) else (None, None)
    client_id = client_id or fields.get("client_id")
    secret = secret if secret is not None else fields.get("client_secret")
    grant = fields.get("grant_type")
    if grant == "client_credentials":
        return _client_credentials(state, client_id, secret)
    if grant == "authorization_code":
        return _authorization_code(state, client_id, secret, fields)
    return oauth_error(
        "unsupported_grant_type",
        "grant_type must be client_credentials or authorization_code",
        status=400,
    )


def _client_credentials(
    state: EmulatorState, client_id: str | None, secret: str | None
) -> Response:
    client = state.clients.get(client_id or "")
    if (
        client is None
        or client.grant != "client_credentials"
        or client.secret is None
        or secret is None
        or not hmac.compare_digest(client.secret.encode(), secret.encode())
    ):
        return _invalid_client()
    return _token_response(state, client, user_id=None)


def _authorization_code(
    state: EmulatorState, client_id: str | None, secret: str | None, fields: dict[str, str]
) -> Response:
    client = state.clients.get(client_id or "")
    if client is None or client.grant != "authorization_code":
        return _invalid_client()
    if client.secret is not None and (
        secret is None or not hmac.compare_digest(client.secret.encode(), secret.encode())
    ):
        return _invalid_client()
    grant = state.auth_codes.pop(fields.get("code", ""), None)
    verifier = fields.get("code_verifier", "")
    if grant is None or grant["client_id"] != client.id:
        return oauth_error("invalid_grant", "the authorization code is unknown or used", status=400)
    if grant["expires_at"] <= state.clock.now():
        return oauth_error("invalid_grant", "the authorization code has expired", status=400)
    if fields.get("redirect_uri") != grant["redirect_uri"]:
        return oauth_error(
            "invalid_grant", "redirect_uri does not match the authorization", status=400
        )
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    if not _PKCE_VALUE.match(verifier) or not hmac.compare_digest(challenge, grant["challenge"]):
        return oauth_error(
            "invalid_grant", "code_verifier does not match code_challenge", status=400
        )
    return _token_response(state, client, user_id=grant["user_id"])


def _token_response(state: EmulatorState, client: ClientSpec, *, user_id: str | None) -> Response:
    access_token, lifetime = state.issue_token(client, user_id=user_id)
    body: dict[str, Any] = {
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": int(lifetime),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def authorize(request: Request) -> Response:
    """``GET /oauth/authorize``: auto-approves the client's configured user."""
    state: EmulatorState = request.app.state.emulator
    params = request.query_params
    client = state.clients.get(params.get("client_id", ""))
    if client is None or client.grant != "authorization_code" or client.user is None:
        return oauth_error("invalid_client", "unknown authorization_code client_id", status=400)
    redirect_uri = params.get("redirect_uri", "")
    if not is_loopback_redirect(redirect_uri):
        return oauth_error(
            "invalid_request",
            "redirect_uri must be an http URL on a loopback address (127.0.0.1, localhost, [::1])",
            status=400,
        )
    if params.get("response_type") != "code":
        return oauth_error("unsupported_response_type", "response_type must be code", status=400)
    challenge = params.get("code_challenge", "")
    if params.get("code_challenge_method") != "S256" or not _PKCE_VALUE.match(challenge):
        return oauth_error(
            "invalid_request",
            "code_challenge (43-128 characters) with code_challenge_method=S256 is required",
            status=400,
        )
    user = state.fixture.find_user(client.user)
    assert user is not None  # the fixture validator checked the reference
    code = secrets.token_urlsafe(24)
    state.auth_codes[code] = {
        "client_id": client.id,
        "user_id": str(user.id),
        "redirect_uri": redirect_uri,
        "challenge": challenge,
        "expires_at": state.clock.now() + AUTH_CODE_LIFETIME_S,
    }
    query = {"code": code}
    if "state" in params:
        query["state"] = params["state"]
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(query), status_code=302)
