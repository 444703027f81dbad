"""Agents sign in with Genesys Cloud (authorization code + PKCE against the emulator's form) and
get a session that dials only as themselves and sees only their calls; the widget's token is
bound to its CRM origin, short-lived, then read-only (issue 19). HTTP level, no browser."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gcdial.client import AsyncClient
from gcdial.emulator import EmulatorServer
from gcdial.serve.app import create_app
from gcdial.serve.config import ServeConfig
from gcdial.serve.keys import new_api_key
from gcdial.serve.pg_store import PostgresStore
from gcdial.serve.server import ServeServer
from gcdial.serve.sqlite_store import SqliteStore
from gcdial.serve.store import Store

ALICE = "alice@example.com"
BOB = "bob@example.com"
CRM = "http://127.0.0.1:9"  # an allowed CRM origin (nothing listens there: the browser tests do)
EVIL = "http://127.0.0.1:7"
WIDGET_S = 600.0
WATCH_S = 1200.0


@dataclass
class Service:
    url: str
    store: Store
    emulator: EmulatorServer
    clock: list[float]
    crm_key: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


@contextmanager
def _serve(
    emulator: EmulatorServer, tmp_path: Path, store: Store | None = None, **settings: Any
) -> Iterator[Service]:
    """The service with agent sign-in (client sandbox-signin unless told) and one allowed widget
    origin, on a clock the test moves (on a SQLite file unless given a store); a CRM key that
    may dial for anyone."""
    now = [time.time()]
    store = store or SqliteStore(tmp_path / "serve.sqlite3")
    config = ServeConfig(
        sse_poll_s=0.2,
        campaigns_dir=str(tmp_path / "campaigns"),
        signin_client_id="sandbox-signin",
        widget_origins=(CRM,),
        widget_session_s=WIDGET_S,
        widget_watch_s=WATCH_S,
    )
    app = create_app(
        store,
        lambda: AsyncClient(
            base_url=emulator.base_url,
            client_id=emulator.client_id,
            client_secret=emulator.client_secret,
        ),
        replace(config, **settings),
        clock=lambda: now[0],
        single_process=True,
    )
    server = ServeServer(app).start()
    made = new_api_key("crm", now=now[0], rate_per_minute=100_000)
    store.add_api_key(made.record)
    try:
        yield Service(server.base_url, store, emulator, now, made.key)
    finally:
        server.stop()
        store.close()


@pytest.fixture
def service(emulator: EmulatorServer, tmp_path: Path) -> Iterator[Service]:
    """The service against the session emulator."""
    with _serve(emulator, tmp_path) as running:
        yield running


def _sign_in(
    http: httpx.Client,
    svc: Service,
    start: str,
    user: str = "alice",
    decision: str = "allow",
    client: str = "sandbox-signin",
) -> httpx.Response:
    """Start at ``start`` on the service, answer the emulator's form, come back: the answer of
    the service's callback."""
    begun = http.get(start)
    assert begun.status_code == 302, begun.text
    target = urlsplit(begun.headers["location"])
    assert f"{target.scheme}://{target.netloc}" == svc.emulator.base_url
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query["code_challenge_method"] == "S256"
    assert query["client_id"] == client
    assert query["redirect_uri"] == svc.url + "/auth/genesys/callback"
    with httpx.Client(timeout=30) as browser_at_login_host:
        form = browser_at_login_host.get(
            f"{target.scheme}://{target.netloc}{target.path}",
            params=query,
            headers={"Accept": "text/html"},
        )
        assert form.status_code == 200
        back = browser_at_login_host.post(
            svc.emulator.base_url + "/oauth/authorize",
            data={**query, "user": user, "decision": decision},
        )
    assert back.status_code == 302, back.text
    callback = urlsplit(back.headers["location"])
    return http.get(callback.path + "?" + callback.query)


def _widget_result(answer: httpx.Response) -> dict[str, Any]:
    found = re.search(
        r'<script type="application/json" id="gcdial-signin-result">(.*?)</script>',
        answer.text,
        re.S,
    )
    assert found is not None, answer.text
    result: dict[str, Any] = json.loads(found.group(1))
    return result


def _wait_ended(http: httpx.Client, call_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        call: dict[str, Any] = http.get(f"/v1/calls/{call_id}", headers=headers).json()
        if call.get("ended") or time.monotonic() > deadline:
            return call
        time.sleep(0.1)


def test_an_agent_signs_in_and_dials_only_as_herself(service: Service) -> None:
    crm = {"Authorization": f"Bearer {service.crm_key}"}
    with service.client() as http:
        bobs = http.post(
            "/v1/calls",
            json={"agent": BOB, "to": "+14155550111"},
            headers={**crm, "Idempotency-Key": "bob-1"},
        )
        assert bobs.status_code == 202, bobs.text
        done = _sign_in(http, service, "/auth/genesys/start")
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/"
        assert "gcdial_page" in http.cookies
        page = http.get("/")
        assert "Alice" in page.text or ALICE in page.text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert csrf is not None, page.text
        headers = {"X-CSRF-Token": csrf.group(1)}
        me = http.get("/page/session").json()
        assert me["key"]["name"] == f"agent:{ALICE}"
        assert sorted(me["key"]["scopes"]) == ["dial", "watch"]
        as_bob = http.post(
            "/v1/calls",
            json={"agent": BOB, "to": "+14155550112"},
            headers={**headers, "Idempotency-Key": "a-1"},
        )
        assert as_bob.status_code == 403, as_bob.text
        assert as_bob.json()["error"]["type"] == "agent_not_allowed"
        mine = http.post(
            "/v1/calls",
            json={"agent": ALICE, "to": "+14155550113"},
            headers={**headers, "Idempotency-Key": "a-2"},
        )
        assert mine.status_code == 202, mine.text
        listed = http.get("/v1/calls").json()["calls"]
        assert [c["id"] for c in listed] == [mine.json()["id"]]
        assert http.get(f"/v1/calls/{bobs.json()['id']}").status_code == 404
    # One key per agent, whatever the number of sign-ins; the Genesys token is not kept.
    agent_keys = [k for k in service.store.list_api_keys() if k.name.startswith("agent:")]
    assert [(k.name, k.agents[0]) for k in agent_keys] == [(f"agent:{ALICE}", ALICE)]


def test_the_widget_token_is_bound_to_its_origin_and_short_lived(service: Service) -> None:
    with service.client() as http:
        refused = http.get("/widget/signin", params={"origin": EVIL})
        assert refused.status_code == 403
        assert "does not allow click-to-dial on http://127.0.0.1:7" in refused.text
        assert "gcdial_signin" not in http.cookies
        hello = http.get("/widget/hello", headers={"Origin": EVIL}).json()
        assert hello["allowed"] is False
        assert http.get("/widget/hello", headers={"Origin": CRM}).json()["allowed"] is True
        # CORS: a browser on another origin may not send the widget's requests at all.
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        }
        allowed = http.options("/v1/calls", headers={**preflight, "Origin": CRM})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == CRM
        evil = http.options("/v1/calls", headers={**preflight, "Origin": EVIL})
        assert evil.status_code == 400
        assert "access-control-allow-origin" not in evil.headers

        done = _sign_in(http, service, f"/widget/signin?origin={CRM}")
        assert done.status_code == 200, done.text
        assert "frame-ancestors " + CRM in done.headers["content-security-policy"]
        result = _widget_result(done)
        assert result["origin"] == CRM  # postMessage's target: that origin only
        message = result["message"]
        assert message["ok"] is True
        assert message["agent"] == {"email": ALICE, "name": "Alice Anders"}
        token = message["token"]
        assert token.startswith("w1.")
        assert "gcdial_page" not in http.cookies  # the widget gets no cookie

        def headers(origin: str | None = CRM, **extra: str) -> dict[str, str]:
            shown = {"Authorization": f"Bearer {token}", **extra}
            return {**shown, "Origin": origin} if origin else shown

        body = {"agent": ALICE, "to": "+14155550114"}
        for origin in (None, EVIL):
            stolen = http.post(
                "/v1/calls", json=body, headers=headers(origin, **{"Idempotency-Key": "w-0"})
            )
            assert stolen.status_code == 403, stolen.text
            assert stolen.json()["error"]["type"] == "origin_not_allowed"
        as_bob = http.post(
            "/v1/calls", json={**body, "agent": BOB}, headers=headers(**{"Idempotency-Key": "w-1"})
        )
        assert as_bob.status_code == 403
        placed = http.post("/v1/calls", json=body, headers=headers(**{"Idempotency-Key": "w-2"}))
        assert placed.status_code == 202, placed.text
        assert placed.headers["access-control-allow-origin"] == CRM
        # Each answer says how long the token may still dial, on the service's clock (the
        # browser's may differ), and lets the widget read it.
        left = int(service.clock[0] + WIDGET_S) - service.clock[0]  # the token keeps whole seconds
        assert placed.headers["gcdial-session-expires-in"] == str(int(left))
        assert message["expiresIn"] == int(left)
        assert (
            "gcdial-session-expires-in" in placed.headers["access-control-expose-headers"].lower()
        )
        call_id = placed.json()["id"]
        # The sign-in expires mid-call: the call still shows, a new one needs a sign-in.
        service.clock[0] += WIDGET_S + 1
        seen = http.get(f"/v1/calls/{call_id}?expand=progress", headers=headers())
        assert seen.status_code == 200, seen.text
        assert seen.json()["step"]
        assert seen.headers["gcdial-session-expires-in"] == "0"
        again = http.post("/v1/calls", json=body, headers=headers(**{"Idempotency-Key": "w-3"}))
        assert again.status_code == 401
        assert again.json()["error"]["type"] == "session_expired"
        ended = _wait_ended(http, call_id, headers())
        assert ended["ended"] is True
        service.clock[0] += WATCH_S
        assert http.get(f"/v1/calls/{call_id}", headers=headers()).status_code == 401
    [call] = service.emulator.calls_created()
    assert call["userId"] == "11111111-1111-4111-8111-111111111111"


@pytest.mark.parametrize(
    ("user", "decision", "status", "why"),
    [
        ("alice", "deny", 403, "Genesys Cloud refused the sign-in: The user denied"),
        ("erin", "allow", 403, "erin@example.com is inactive"),
    ],
)
def test_a_refused_sign_in_says_why_and_gives_no_session(
    service: Service, user: str, decision: str, status: int, why: str
) -> None:
    with service.client() as http:
        done = _sign_in(http, service, f"/widget/signin?origin={CRM}", user, decision)
        assert done.status_code == status, done.text
        assert why in done.text
        result = _widget_result(done)
        assert result["message"]["ok"] is False
        assert why in result["message"]["message"]
        assert "token" not in result["message"]
    assert not [k for k in service.store.list_api_keys() if k.name.startswith("agent:")]


@pytest.fixture(params=["sqlite", "postgres"])
def any_store_service(
    request: pytest.FixtureRequest, emulator: EmulatorServer, tmp_path: Path
) -> Iterator[Service]:
    """The service on each store: an agent key made, then revoked, behaves the same on both."""
    store: Store | None = None
    if request.param == "postgres":
        store = PostgresStore(request.getfixturevalue("pg_url"))
    with _serve(emulator, tmp_path, store) as running:
        yield running


def test_a_callback_not_started_here_or_a_revoked_agent_is_refused(
    any_store_service: Service,
) -> None:
    service = any_store_service
    with service.client() as http:
        forged = http.get("/auth/genesys/callback", params={"code": "x", "state": "y"})
        assert forged.status_code == 400
        assert "not started here" in forged.text
        assert "gcdial_page" not in http.cookies
        assert _sign_in(http, service, "/auth/genesys/start").status_code == 303
    [agent_key] = [k for k in service.store.list_api_keys() if k.name.startswith("agent:")]
    assert service.store.revoke_api_key(agent_key.id, now=time.time())
    with service.client() as http:
        again = _sign_in(http, service, "/auth/genesys/start")
        assert again.status_code == 403
        assert "revoked" in again.text
        assert "gcdial_page" not in http.cookies


def test_sign_in_is_off_without_a_client(running: Any) -> None:
    answer = running.http.get("/auth/genesys/start")
    assert answer.status_code == 404
    assert "not set up" in answer.text
    assert "Sign in with Genesys Cloud" not in running.http.get("/").text
    unused = uuid.uuid4().hex
    assert running.http.get(f"/widget/signin?origin=http://x{unused}.example").status_code == 403


@pytest.mark.parametrize(
    ("secret", "status", "why"),
    [
        ("right-secret", 303, None),
        ("wrong-secret", 400, "Genesys Cloud does not know this service"),
    ],
)
def test_a_client_with_a_secret_sends_it_and_a_wrong_one_is_refused(
    make_emulator: Any, tmp_path: Path, secret: str, status: int, why: str | None
) -> None:
    fixture = json.loads(
        (Path(__file__).parents[2] / "src/gcdial/emulator/default_fixture.json").read_text()
    )
    fixture["clients"].append(
        {"id": "confidential-signin", "grant": "authorization_code", "secret": "right-secret"}
    )
    path = tmp_path / "org.json"
    path.write_text(json.dumps(fixture))
    emulator = make_emulator(fixture=path)
    settings: dict[str, Any] = {
        "signin_client_id": "confidential-signin",
        "signin_client_secret": secret,
    }
    shown = ServeConfig(signin_client_id="confidential-signin", signin_client_secret=secret)
    assert secret not in repr(shown)
    with _serve(emulator, tmp_path, **settings) as running, running.client() as http:
        done = _sign_in(http, running, "/auth/genesys/start", client="confidential-signin")
        assert done.status_code == status, done.text
        assert secret not in done.text
        if why is not None:
            assert why in done.text
            assert "gcdial_page" not in http.cookies
        else:
            assert "gcdial_page" in http.cookies
