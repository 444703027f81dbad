"""Small helpers for the emulator's tests: tokens, clients and ErrorBody checks."""

import base64
import hashlib
import secrets
import ssl
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from gcdial.emulator import EmulatorServer

ALICE = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"
CAROL = "33333333-3333-4333-8333-333333333333"
DAVE = "44444444-4444-4444-8444-444444444444"
REDIRECT = "http://127.0.0.1:53682/cb"
ERIN = "55555555-5555-4555-8555-555555555555"

# One TLS context for every client: building one per httpx.Client costs ~15 ms (plain http here).
_TLS = ssl.create_default_context()

ERROR_BODY_KEYS = {
    "message",
    "code",
    "status",
    "messageWithParams",
    "messageParams",
    "contextId",
    "details",
    "errors",
}


def client_token(emu: EmulatorServer) -> str:
    """A fresh client-credentials access token."""
    with httpx.Client(base_url=emu.base_url, verify=_TLS) as http:
        response = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(emu.client_id, emu.client_secret),
        )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def api(emu: EmulatorServer, token: str | None = None) -> httpx.Client:
    """An httpx client on the emulator, authorised with ``token`` (a new one by default)."""
    token = token if token is not None else client_token(emu)
    return httpx.Client(
        base_url=emu.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10.0,
        verify=_TLS,
    )


def place_call(http: httpx.Client, number: str, *, user: str = ALICE) -> str:
    """Create a call on behalf of ``user``; returns the conversation id."""
    response = http.post(f"/api/v2/conversations/calls/user/{user}", json={"phoneNumber": number})
    assert response.status_code == 200, response.text
    call_id: str = response.json()["id"]
    return call_id


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Check a full Genesys ErrorBody with ``status`` and ``code``; returns it."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) >= ERROR_BODY_KEYS, body
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["message"]
    uuid.UUID(body["contextId"])
    return body


def wait_for(predicate: Callable[[], Any], *, timeout: float = 10.0) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def call_over(http: httpx.Client, call_id: str) -> dict[str, Any] | None:
    """The call's JSON once every participant has disconnected, else None."""
    body: dict[str, Any] = http.get(f"/api/v2/conversations/calls/{call_id}").json()
    if all(p["state"] == "disconnected" for p in body["participants"]):
        return body
    return None


def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(http: httpx.Client, challenge: str, **overrides: str) -> httpx.Response:
    """``GET /oauth/authorize`` for the sandbox PKCE client (which approves alice)."""
    params = {
        "response_type": "code",
        "client_id": "sandbox-pkce",
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "xyz-123",
        **overrides,
    }
    return http.get("/oauth/authorize", params=params)


def user_token_with(http: httpx.Client) -> str:
    """A user token for alice, through the whole PKCE round trip on ``http``."""
    verifier, challenge = pkce()
    location = authorize(http, challenge).headers["location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    response = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "client_id": "sandbox-pkce",
            "redirect_uri": REDIRECT,
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def user_token(emu: EmulatorServer) -> str:
    """A fresh user token for alice (PKCE)."""
    with httpx.Client(base_url=emu.base_url, verify=_TLS) as http:
        return user_token_with(http)
