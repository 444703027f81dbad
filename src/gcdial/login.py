"""``gcdial login``: the OAuth authorization-code flow with PKCE through a loopback redirect.

A one-shot HTTP server on 127.0.0.1 receives the browser's redirect (``?code&state``); the code
is exchanged, with the PKCE verifier, for a user token. No client secret is involved: the OAuth
client is a public one whose redirect URI is ``http://127.0.0.1:PORT/callback``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from pydantic import SecretStr

from gcdial.auth import OAUTH_ERROR_HINTS, parse_token_response, token_transport_error, token_url
from gcdial.config import Settings
from gcdial.errors import AuthError, ConfigError
from gcdial.tokenstore import StoredToken

__all__ = [
    "CALLBACK_PATH",
    "DEFAULT_LOGIN_TIMEOUT_S",
    "authorize_url",
    "code_challenge",
    "new_code_verifier",
    "pkce_login",
]

DEFAULT_LOGIN_TIMEOUT_S: Final = 300.0
CALLBACK_PATH: Final = "/callback"
_PAGE_DONE: Final = b"<html><body><h1>gcdial: logged in</h1><p>You can close this window.</p>"
_PAGE_FAILED: Final = b"<html><body><h1>gcdial: login failed</h1><p>See the terminal.</p>"


def new_code_verifier() -> str:
    """A fresh PKCE code verifier: 86 URL-safe characters (RFC 7636 allows 43 to 128)."""
    return secrets.token_urlsafe(64)


def code_challenge(verifier: str) -> str:
    """The S256 code challenge of a verifier: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(
    login_base_url: str, *, client_id: str, redirect_uri: str, challenge: str, state: str
) -> str:
    """The URL the user opens in a browser to log in and approve gcdial."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
        }
    )
    return f"{login_base_url.rstrip('/')}/oauth/authorize?{query}"


class _CallbackServer(http.server.HTTPServer):
    """Loopback server that keeps the first redirect carrying ``code`` or ``error``."""

    def __init__(self, port: int) -> None:
        self.result: dict[str, str] | None = None
        self.arrived = threading.Event()
        super().__init__(("127.0.0.1", port), _CallbackHandler)


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(parts.query).items() if v}
        if parts.path != CALLBACK_PATH or not ({"code", "error"} & set(params)):
            self._reply(404, b"not found")
            return
        ok = "code" in params and self.server.result is None
        self._reply(200 if ok else 400, _PAGE_DONE if ok else _PAGE_FAILED)
        if self.server.result is None:
            self.server.result = params
            self.server.arrived.set()

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # The default logs the request line, which carries the authorization code.
        return


def _start_server(port: int) -> _CallbackServer:
    try:
        return _CallbackServer(port)
    except OSError as exc:
        raise ConfigError(
            f"Cannot listen on 127.0.0.1:{port} for the login redirect: {exc.strerror or exc}.",
            setting="login_port",
            hint="Free that port or set another login_port (GCDIAL_LOGIN_PORT) registered as "
            "the OAuth client's redirect URI.",
        ) from None


def _exchange(
    settings: Settings,
    *,
    login_base_url: str,
    client_id: str,
    code: str,
    verifier: str,
    redirect_uri: str,
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "client_id": client_id,
        "redirect_uri": redirect_uri,
    }
    timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)
    try:
        with httpx.Client(verify=settings.verify_tls, timeout=timeout) as client:
            response = client.post(
                token_url(login_base_url), data=data, headers={"Accept": "application/json"}
            )
            response.read()
            return response
    except httpx.HTTPError as exc:
        raise token_transport_error(exc, login_base_url) from None


def pkce_login(
    settings: Settings,
    *,
    client_id: str,
    open_browser: Callable[[str], bool],
    port: int | None = None,
    timeout_s: float = DEFAULT_LOGIN_TIMEOUT_S,
    show_url: Callable[[str], None] | None = None,
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> StoredToken:
    """Log a person in through their browser and return their user token (not yet saved).

    ``open_browser(url)`` returns whether a browser opened; when it did not (or raised),
    ``show_url(url)`` is called so the caller can print the URL for the user to open. ``port``
    defaults to ``settings.login_port`` (0: any free port).
    """
    endpoints = settings.endpoints()
    server = _start_server(settings.login_port if port is None else port)
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}{CALLBACK_PATH}"
    verifier = new_code_verifier()
    state = secrets.token_urlsafe(24)
    url = authorize_url(
        endpoints.login_base_url,
        client_id=client_id,
        redirect_uri=redirect_uri,
        challenge=code_challenge(verifier),
        state=state,
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        try:
            opened = open_browser(url)
        except Exception:
            opened = False
        if not opened and show_url is not None:
            show_url(url)
        if not server.arrived.wait(timeout_s):
            raise AuthError(
                f"No login arrived at {redirect_uri} within {timeout_s:.0f} s.",
                login_host=endpoints.login_host,
                hint=(
                    "Open the login URL in a browser on this machine, and check that "
                    f"{redirect_uri} is a redirect URI of OAuth client {client_id} (set "
                    "GCDIAL_LOGIN_PORT to the registered port)."
                ),
            )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    result = server.result or {}
    if "error" in result:
        code = result["error"]
        description = result.get("error_description", "")[:200]
        raise AuthError(
            f"The login was refused ({code}{': ' + description if description else ''}).",
            login_host=endpoints.login_host,
            code=code,
            hint=OAUTH_ERROR_HINTS.get(code, "Try `gcdial login` again."),
        )
    if not hmac.compare_digest(result.get("state", ""), state):
        raise AuthError(
            "The login redirect carried the wrong state, so it was not from this login attempt.",
            login_host=endpoints.login_host,
            hint="Run `gcdial login` again, and finish only the newest login page.",
        )
    issued_at = wall_clock()
    response = _exchange(
        settings,
        login_base_url=endpoints.login_base_url,
        client_id=client_id,
        code=result["code"],
        verifier=verifier,
        redirect_uri=redirect_uri,
    )
    grant = parse_token_response(response, client_id=client_id, secrets=(result["code"],))
    expires_at = issued_at + timedelta(seconds=grant.expires_in) if grant.expires_in else None
    return StoredToken(
        access_token=SecretStr(grant.access_token),
        token_type=grant.token_type,
        expires_at=expires_at,
        api_base_url=endpoints.api_base_url,
        login_base_url=endpoints.login_base_url,
        client_id=client_id,
        created_at=issued_at,
    )
