"""The login host's sign-in form: choose a sandbox user, deny consent, refusals (issue 19)."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gcdial.emulator import EmulatorServer

from .helpers import api, pkce

CLIENT = "sandbox-signin"
CALLBACK = "http://127.0.0.1:8123/auth/genesys/callback"  # registered without a port
BOB = "22222222-2222-4222-8222-222222222222"
HTML = {"Accept": "text/html"}


def _params(challenge: str, **overrides: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": CLIENT,
        "redirect_uri": CALLBACK,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-1",
        **overrides,
    }


def _back(response: httpx.Response) -> dict[str, str]:
    """The query the login host sent the browser back to the client with."""
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def test_the_form_signs_in_the_chosen_user(emulator: EmulatorServer) -> None:
    verifier, challenge = pkce()
    with httpx.Client(base_url=emulator.base_url) as http:
        form = http.get("/oauth/authorize", params=_params(challenge), headers=HTML)
        assert form.status_code == 200
        assert "text/html" in form.headers["content-type"]
        policy = form.headers["content-security-policy"]
        assert "form-action 'self' http://127.0.0.1:8123" in policy
        assert "<script" not in form.text
        for name in ("Alice Anders", "Bob Berg", "Erin Evans"):
            assert name in form.text
        back = _back(
            http.post(
                "/oauth/authorize", data={**_params(challenge), "user": "bob", "decision": "allow"}
            )
        )
        assert back["state"] == "st-1"
        token = http.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": back["code"],
                "code_verifier": verifier,
                "client_id": CLIENT,
                "redirect_uri": CALLBACK,
            },
        )
        assert token.status_code == 200, token.text
    with api(emulator, token.json()["access_token"]) as user:
        me = user.get("/api/v2/users/me")
        assert me.status_code == 200
        assert me.json()["id"] == BOB
        assert me.json()["state"] == "active"


def test_denied_consent_goes_back_with_access_denied(emulator: EmulatorServer) -> None:
    _, challenge = pkce()
    with httpx.Client(base_url=emulator.base_url) as http:
        back = _back(http.post("/oauth/authorize", data={**_params(challenge), "decision": "deny"}))
    assert back["error"] == "access_denied"
    assert "denied" in back["error_description"]
    assert back["state"] == "st-1"
    assert "code" not in back


def test_an_inactive_user_is_refused(emulator: EmulatorServer) -> None:
    _, challenge = pkce()
    with httpx.Client(base_url=emulator.base_url) as http:
        chosen = {**_params(challenge), "user": "erin", "decision": "allow"}
        back = _back(http.post("/oauth/authorize", data=chosen))
        assert back["error"] == "access_denied"
        assert "inactive" in back["error_description"]
        nobody = http.post("/oauth/authorize", data={**_params(challenge), "decision": "allow"})
        assert nobody.status_code == 400
        assert "Choose a user" in nobody.text


def test_inactive_user_refused_on_the_page_when_so_set(make_emulator: Any) -> None:
    emulator = make_emulator(signin_inactive_user="page")
    _, challenge = pkce()
    with httpx.Client(base_url=emulator.base_url) as http:
        chosen = {**_params(challenge), "user": "erin", "decision": "allow"}
        refused = http.post("/oauth/authorize", data=chosen)
    assert refused.status_code == 403
    assert "erin@example.com is inactive" in refused.text


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"client_id": "nobody"}, "invalid_client"),
        ({"client_id": "sandbox-client"}, "invalid_client"),
        ({"redirect_uri": "http://127.0.0.1:8123/elsewhere"}, "invalid_request"),
        ({"redirect_uri": "https://evil.example.com/auth/genesys/callback"}, "invalid_request"),
    ],
)
def test_unknown_client_or_redirect_never_goes_back(
    emulator: EmulatorServer, overrides: dict[str, str], error: str
) -> None:
    _, challenge = pkce()
    with httpx.Client(base_url=emulator.base_url) as http:
        page = http.get("/oauth/authorize", params=_params(challenge, **overrides), headers=HTML)
        posted = http.post(
            "/oauth/authorize",
            data={**_params(challenge, **overrides), "user": "alice", "decision": "allow"},
        )
        plain = http.get("/oauth/authorize", params=_params(challenge, **overrides))
    assert page.status_code == 400
    assert "location" not in page.headers
    assert error in page.text
    assert posted.status_code == 400
    assert "location" not in posted.headers
    assert plain.json()["error"] == error
