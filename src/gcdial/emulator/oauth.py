"""The login host's OAuth endpoints: client credentials, and authorization code with PKCE."""

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from html import escape
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

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


_FORM_FIELDS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "code_challenge",
    "code_challenge_method",
    "state",
)
_PAGE_STYLE = (
    "body{font:16px system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}"
    "fieldset{border:1px solid #ccc;padding:.5rem 1rem}label{display:block;margin:.4rem 0}"
    "button{font:inherit;padding:.4rem 1rem;margin:.8rem .5rem 0 0}"
    ".error{color:#a00;border:1px solid #a00;padding:.5rem}"
)


def _redirect_matches(client: ClientSpec, uri: str) -> bool:
    """Whether ``uri`` is one the client registered (a loopback one on any port)."""
    if not is_loopback_redirect(uri):
        return False
    if client.redirect_uris is None:
        return True
    given = urlsplit(uri)
    for registered in client.redirect_uris:
        known = urlsplit(registered)
        if (known.scheme, known.hostname, known.path, known.query) == (
            given.scheme,
            given.hostname,
            given.path,
            given.query,
        ):
            return True
    return False


def _page(title: str, body: str, *, status: int = 200, form_target: str = "") -> HTMLResponse:
    """A page of the login host: no script at all, and its own content security policy."""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{escape(title)}</title><link rel="icon" href="data:,">'
        f"<style>{_PAGE_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    # The form posts here, and its answer redirects to the client: form-action names both.
    actions = " ".join(filter(None, ["'self'", form_target]))
    policy = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"form-action {actions}; frame-ancestors 'none'; base-uri 'none'"
    )
    return HTMLResponse(
        html,
        status,
        headers={"Content-Security-Policy": policy, "Cache-Control": "no-store"},
    )


def _refusal(request: Request, error: str, description: str) -> Response:
    """A request the login host cannot send back to the client (unknown client or redirect
    URI: RFC 6749 4.1.2.1): a page for a browser, the JSON error for anything else."""
    if "text/html" not in request.headers.get("accept", ""):
        return oauth_error(error, description, status=400)
    body = f'<p class="error" role="alert" id="error"><strong>{escape(error)}</strong>: '
    body += f"{escape(description)}</p><p>Close this window and try again.</p>"
    return _page("Sign-in refused", body, status=400)


def _back_to_client(redirect_uri: str, query: dict[str, str]) -> Response:
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(query), status_code=302)


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


async def authorize(request: Request) -> Response:
    """``GET /oauth/authorize``: a client with a ``user`` approves it at once; any other shows
    the sign-in form. ``POST`` is that form's answer: a user chosen, or consent denied."""
    state: EmulatorState = request.app.state.emulator
    if request.method == "POST":
        try:
            form = await request.form()
        except Exception:
            return oauth_error("invalid_request", "the body must be form-encoded", status=400)
        params = {k: v for k, v in form.items() if isinstance(v, str)}
    else:
        params = dict(request.query_params)
    client = state.clients.get(params.get("client_id", ""))
    if client is None or client.grant != "authorization_code":
        return _refusal(request, "invalid_client", "unknown authorization_code client_id")
    redirect_uri = params.get("redirect_uri", "")
    if not _redirect_matches(client, redirect_uri):
        return _refusal(
            request,
            "invalid_request",
            "redirect_uri is not registered for this client (an http URL on a loopback "
            "address: 127.0.0.1, localhost, [::1])",
        )
    back: dict[str, str] = {"state": params["state"]} if "state" in params else {}
    if params.get("response_type") != "code":
        return oauth_error("unsupported_response_type", "response_type must be code", status=400)
    challenge = params.get("code_challenge", "")
    if params.get("code_challenge_method") != "S256" or not _PKCE_VALUE.match(challenge):
        return oauth_error(
            "invalid_request",
            "code_challenge (43-128 characters) with code_challenge_method=S256 is required",
            status=400,
        )
    if client.user is not None:
        user = state.fixture.find_user(client.user)
        assert user is not None  # the fixture validator checked the reference
    elif request.method == "GET":
        return _signin_form(state, params, None)
    elif params.get("decision") != "allow":
        description = "The user denied the application access."
        return _back_to_client(
            redirect_uri, {"error": "access_denied", "error_description": description, **back}
        )
    else:
        found = state.fixture.find_user(params.get("user", ""))
        user = state.users.get(str(found.id)) if found is not None else None
        if user is None:
            return _signin_form(state, params, "Choose a user to sign in as.", status=400)
        if user.state != "active":
            reason = f"The user {user.email} is inactive and cannot sign in."
            if state.config.signin_inactive_user == "page":
                return _signin_form(state, params, reason, status=403)
            return _back_to_client(
                redirect_uri, {"error": "access_denied", "error_description": reason, **back}
            )
    code = secrets.token_urlsafe(24)
    state.auth_codes[code] = {
        "client_id": client.id,
        "user_id": str(user.id),
        "redirect_uri": redirect_uri,
        "challenge": challenge,
        "expires_at": state.clock.now() + AUTH_CODE_LIFETIME_S,
    }
    return _back_to_client(redirect_uri, {"code": code, **back})


def _signin_form(
    state: EmulatorState, params: dict[str, str], error: str | None, *, status: int = 200
) -> Response:
    """The sandbox's sign-in form: choose one of the organisation's users, or deny."""
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{escape(params[name])}">'
        for name in _FORM_FIELDS
        if name in params
    )
    users = "".join(
        f'<label><input type="radio" name="user" value="{escape(u.key or str(u.id))}"'
        f' id="user-{escape(u.key or str(u.id))}"> {escape(u.name)} ({escape(u.email)})'
        f"{'' if u.state == 'active' else ' · inactive'}</label>"
        for u in state.fixture.users
    )
    alert = f'<p class="error" role="alert" id="error">{escape(error)}</p>' if error else ""
    body = (
        f"<p>The application <strong>{escape(params.get('client_id', ''))}</strong> asks to "
        "act as you. This is the gcdial emulator: choose a sandbox user.</p>"
        f'{alert}<form method="post" action="/oauth/authorize">{hidden}'
        f"<fieldset><legend>Sign in as</legend>{users}</fieldset>"
        '<button type="submit" name="decision" value="allow" id="allow">Sign in</button>'
        '<button type="submit" name="decision" value="deny" id="deny">Deny</button></form>'
    )
    return _page(
        "Sign in to Genesys Cloud (emulator)",
        body,
        status=status,
        form_target=_origin(params.get("redirect_uri", "")),
    )
