"""OAuth on the login path: client credentials, token lifetime, revocation, PKCE round trip."""

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gcdial.emulator import EmulatorServer

from .helpers import (
    ALICE,
    REDIRECT,
    api,
    assert_error,
    call_over,
    client_token,
    wait_for,
)
from .helpers import authorize as _authorize
from .helpers import pkce as _pkce
from .helpers import user_token_with as _user_token


def _oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert body["description"]
    assert body["error_description"] == body["description"]


def test_client_credentials_with_basic_auth(emulator: EmulatorServer) -> None:
    with httpx.Client(base_url=emulator.base_url) as http:
        response = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(emulator.client_id, emulator.client_secret),
        )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86399
    assert len(body["access_token"]) >= 32


def test_client_credentials_in_the_form(emulator: EmulatorServer) -> None:
    with httpx.Client(base_url=emulator.base_url) as http:
        response = http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": emulator.client_id,
                "client_secret": emulator.client_secret,
            },
        )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("auth", "headers"),
    [
        (("sandbox-client", "wrong-secret"), {}),
        (("no-such-client", "sandbox-secret"), {}),
        (("sandbox-pkce", "anything"), {}),
        (None, {"Authorization": "Basic !!not-base64!!"}),
        (None, {"Authorization": "Bearer abc"}),
        (None, {}),
    ],
)
def test_bad_client_is_invalid_client(
    emulator: EmulatorServer, auth: Any, headers: dict[str, str]
) -> None:
    with httpx.Client(base_url=emulator.base_url) as http:
        response = http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=auth, headers=headers
        )
    _oauth_error(response, 401, "invalid_client")
    assert "wrong-secret" not in response.text


def test_unsupported_grant(emulator: EmulatorServer) -> None:
    with httpx.Client(base_url=emulator.base_url) as http:
        response = http.post(
            "/oauth/token",
            data={"grant_type": "password"},
            auth=(emulator.client_id, emulator.client_secret),
        )
        _oauth_error(response, 400, "unsupported_grant_type")
        _oauth_error(http.post("/oauth/token", content=b"\xff\xfe"), 400, "unsupported_grant_type")


def test_token_lifetime_runs_on_the_simulated_clock(make_emulator: Any) -> None:
    emu = make_emulator(speed=1000.0, token_lifetime_s=300)
    token = client_token(emu)
    with api(emu, token) as http:
        assert http.get(f"/api/v2/users/{ALICE}").status_code == 200
        time.sleep(0.35)
        assert_error(http.get(f"/api/v2/users/{ALICE}"), 401, "bad.credentials")


@pytest.mark.parametrize("action", ["expire_tokens", "revoke_tokens"])
def test_admin_expire_and_revoke(emulator: EmulatorServer, action: str) -> None:
    token = client_token(emulator)
    with api(emulator, token) as http:
        assert http.get(f"/api/v2/users/{ALICE}").status_code == 200
        getattr(emulator, action)()
        assert_error(http.get(f"/api/v2/users/{ALICE}"), 401, "bad.credentials")
    with api(emulator) as http:
        assert http.get(f"/api/v2/users/{ALICE}").status_code == 200


def test_pkce_round_trip_gives_a_user_token(emulator: EmulatorServer) -> None:
    with httpx.Client(base_url=emulator.base_url) as http:
        verifier, challenge = _pkce()
        redirect = _authorize(http, challenge)
        assert redirect.status_code == 302
        location = urlsplit(redirect.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
        query = parse_qs(location.query)
        assert query["state"] == ["xyz-123"]
        form = {
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "code_verifier": verifier,
            "client_id": "sandbox-pkce",
            "redirect_uri": REDIRECT,
        }
        response = http.post("/oauth/token", data=form)
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        _oauth_error(http.post("/oauth/token", data=form), 400, "invalid_grant")
    with api(emulator, token) as user:
        me = user.get("/api/v2/users/me", params={"expand": "station"})
        assert me.status_code == 200
        assert me.json()["id"] == ALICE
        assert me.json()["station"]["associatedStation"]["id"]
        created = user.post("/api/v2/conversations/calls", json={"phoneNumber": "+14155550170"})
        assert created.status_code == 200, created.text
        wait_for(lambda: call_over(user, created.json()["id"]))
    [call] = emulator.calls_created()
    assert call["userId"] == ALICE


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code_verifier", "x" * 50),
        ("redirect_uri", "http://127.0.0.1:1/other"),
        ("code", "forged"),
    ],
)
def test_pkce_token_exchange_checks(emulator: EmulatorServer, field: str, value: str) -> None:
    with httpx.Client(base_url=emulator.base_url) as http:
        verifier, challenge = _pkce()
        location = _authorize(http, challenge).headers["location"]
        form = {
            "grant_type": "authorization_code",
            "code": parse_qs(urlsplit(location).query)["code"][0],
            "code_verifier": verifier,
            "client_id": "sandbox-pkce",
            "redirect_uri": REDIRECT,
            field: value,
        }
        _oauth_error(http.post("/oauth/token", data=form), 400, "invalid_grant")


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uri": "https://evil.example.com/cb"},
        {"redirect_uri": "http://192.168.1.5:8080/cb"},
        {"redirect_uri": "not a url"},
        {"client_id": "sandbox-client"},
        {"code_challenge_method": "plain"},
        {"code_challenge": "short"},
        {"response_type": "token"},
    ],
)
def test_authorize_rejects_bad_requests(
    emulator: EmulatorServer, overrides: dict[str, str]
) -> None:
    with httpx.Client(base_url=emulator.base_url) as http:
        response = _authorize(http, _pkce()[1], **overrides)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.json()["error"]


def test_client_credentials_are_not_a_user(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        for response in (
            http.get("/api/v2/users/me"),
            http.post("/api/v2/conversations/calls", json={"phoneNumber": "+14155550100"}),
        ):
            body = assert_error(response, 400, "not.a.user")
            assert body["message"] == (
                "This request requires a user context. "
                "Client credentials cannot be used for requests to this resource."
            )
    assert emulator.calls_created() == []


def test_on_behalf_can_refuse_client_credentials(make_emulator: Any) -> None:
    emu = make_emulator(on_behalf_accepts_client_credentials=False)
    with api(emu) as http:
        response = http.post(
            f"/api/v2/conversations/calls/user/{ALICE}", json={"phoneNumber": "+14155550100"}
        )
        assert_error(response, 400, "not.a.user")
        user_token = _user_token(http)
    with api(emu, user_token) as user:
        response = user.post(
            f"/api/v2/conversations/calls/user/{ALICE}", json={"phoneNumber": "+14155550100"}
        )
        assert response.status_code == 200
