"""The page's session cookie and CSRF token (pure), and the page's endpoints over HTTP."""

from __future__ import annotations

import json
import re
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from gcdial.serve.session import (
    SECRET_ENV,
    csrf_token,
    load_secret,
    new_session,
    read_session,
    seal,
)

from .conftest import AGENTS, Web

SECRET = b"s" * 32


def test_a_sealed_session_reads_back_and_a_forged_one_does_not() -> None:
    session = new_session("key_1", now=1000.0, lifetime_s=60)
    value = seal(session, SECRET)
    assert read_session(value, SECRET) == session
    assert read_session(value, b"t" * 32) is None
    key_id, expires, nonce, mac = value.split(".")
    assert read_session(f"key_2.{expires}.{nonce}.{mac}", SECRET) is None
    assert read_session(f"{key_id}.{int(expires) + 999}.{nonce}.{mac}", SECRET) is None
    for junk in (None, "", "a.b", "x" * 600, "a.b.c.d"):
        assert read_session(junk, SECRET) is None
    other = new_session("key_1", now=1000.0, lifetime_s=60)
    assert csrf_token(session, SECRET) != csrf_token(other, SECRET)


def test_the_secret_persists_beside_the_store(tmp_path: Path) -> None:
    store = tmp_path / "serve.sqlite3"
    first = load_secret(store, {})
    assert load_secret(store, {}) == first
    assert (tmp_path / "serve.sqlite3.page-secret").stat().st_mode & 0o077 == 0
    assert load_secret(store, {SECRET_ENV: "e" * 40}) == b"e" * 40
    with pytest.raises(ValueError, match="at least 32"):
        load_secret(store, {SECRET_ENV: "short"})


def _signed_in(web: Web, key: str) -> tuple[httpx.Client, str]:
    http = httpx.Client(base_url=web.url)
    answer = http.post("/page/signin", data={"key": key})
    assert answer.status_code == 303, answer.text
    found = re.search(r'name="csrf-token" content="([^"]+)"', http.get("/").text)
    assert found is not None
    return http, found.group(1)


def test_page_endpoints_need_a_session_scope_and_csrf(web: Web) -> None:
    with httpx.Client(base_url=web.url) as anonymous:
        signed_out = anonymous.get("/v1/calls")
        assert signed_out.status_code == 401
        assert signed_out.json()["error"]["type"] == "unauthorized"
        anonymous.cookies.set("gcdial_page", "key_1.9999999999.n.mac", domain="127.0.0.1")
        forged = anonymous.get("/v1/calls")
        assert forged.status_code == 401
        assert forged.json()["error"]["type"] == "signed_out"
        anonymous.cookies.clear()
        page = anonymous.get("/")
        assert page.status_code == 200
        assert "Sign in" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        icon = anonymous.get("/favicon.ico")  # every browser asks, signed in or not
        assert icon.status_code == 200
        assert icon.headers["content-type"] == "image/x-icon"
        assert icon.content.startswith(b"\x00\x00\x01\x00")  # an ICO file
        assert 'rel="icon" href="/favicon.ico"' in page.text
        foreign = anonymous.post(
            "/page/signin", data={"key": web.watch_key}, headers={"Origin": "https://evil.test"}
        )
        assert foreign.status_code == 403
        assert "set-cookie" not in foreign.headers
    http, csrf = _signed_in(web, web.watch_key)
    with closing(http):
        body = {"agent": "alice@example.com", "to": "+14155550100"}
        no_scope = http.post(
            "/v1/calls", json=body, headers={"X-CSRF-Token": csrf, "Idempotency-Key": "1"}
        )
        assert no_scope.status_code == 403
        assert "'dial' scope" in no_scope.json()["error"]["message"]
        bad = http.get("/page/number", params={"to": "555-01"})
        assert bad.status_code == 422
        assert bad.json()["error"]["path"] == "$.to"
        # The fix names the page's own Country box, not a setting of the server's environment.
        assert "the Country box, now US" in bad.json()["error"]["hint"]
        assert "GCDIAL_DEFAULT_COUNTRY" not in bad.text
    assert web.emulator.calls_created() == []
    http, csrf = _signed_in(web, web.supervisor_key)
    with closing(http):
        no_csrf = http.post("/v1/calls", json=body, headers={"Idempotency-Key": "2"})
        assert no_csrf.status_code == 403
        assert no_csrf.json()["error"]["type"] == "csrf_failed"
        headers = {"X-CSRF-Token": csrf, "Idempotency-Key": "3"}
        first = http.post("/v1/calls", json=body, headers=headers)
        again = http.post("/v1/calls", json=body, headers=headers)
        assert first.status_code == again.status_code == 202
        assert first.json()["id"] == again.json()["id"]  # a re-sent form never rings twice
    assert len(web.emulator.calls_created()) == 1


def test_an_expired_session_says_so(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    http, _ = _signed_in(web, web.watch_key)
    with closing(http):
        cookie = http.cookies["gcdial_page"]
        key_id, _expires, nonce, _mac = cookie.split(".")
        # Re-seal with an expiry in the past, with the service's own secret.
        assert web.store is not None
        secret = load_secret(web.path)
        stale = new_session(key_id, now=0.0, lifetime_s=1)
        stale = type(stale)(key_id=key_id, expires_at=stale.expires_at, nonce=nonce)
        http.cookies.set("gcdial_page", seal(stale, secret), domain="127.0.0.1")
        answer = http.get("/v1/calls")
        assert answer.status_code == 401
        assert answer.json()["error"]["type"] == "session_expired"
        assert "expired" in http.get("/").text


def _read_until_end(response: httpx.Response, guard_s: float = 20.0) -> list[dict[str, str]]:
    """The events of an SSE stream until the service ends it; fails if it has not within
    ``guard_s`` (a guard against hanging, not a timing assertion: the promise is 2 s)."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    deadline = time.monotonic() + guard_s
    for line in response.iter_lines():
        assert time.monotonic() < deadline, f"the stream is still open: {events[-3:]}"
        if not line:
            if current:
                events.append(current)
            current = {}
            continue
        if not line.startswith(":"):
            name, _, value = line.partition(":")
            current[name] = value.removeprefix(" ")
    return events


def test_sign_out_ends_the_session_on_the_server(web: Web) -> None:
    """A copy of the cookie made before sign-out fails after it, and its open stream ends."""
    http, csrf = _signed_in(web, web.watch_key)
    with closing(http), httpx.Client(base_url=web.url, timeout=httpx.Timeout(30, read=8)) as copy:
        copy.cookies.set("gcdial_page", http.cookies["gcdial_page"], domain="127.0.0.1")
        assert copy.get("/v1/calls").status_code == 200
        with copy.stream("GET", "/v1/events") as stream:
            assert stream.status_code == 200
            assert http.post("/page/signout", headers={"X-CSRF-Token": csrf}).status_code == 200
            events = _read_until_end(stream)
        assert events[-1]["event"] == "stream.ended"
        assert json.loads(events[-1]["data"])["type"] == "signed_out"
        after = copy.get("/v1/calls")
        assert after.status_code == 401
        assert after.json()["error"]["type"] == "signed_out"
        assert "Sign in" in copy.get("/").text


def test_revoking_the_key_ends_a_busy_page_stream(web: Web) -> None:
    """Events keep flowing (calls of the key, placed before), the key is revoked: the stream
    ends anyway, saying why."""
    key = web.make_key("doomed", scopes=("watch", "dial"), agents=AGENTS, rate_per_minute=10_000)
    http, _ = _signed_in(web, key)
    with closing(http), http.stream("GET", "/v1/events", timeout=httpx.Timeout(30, read=8)) as s:
        assert s.status_code == 200
        for i in range(3):
            answer = httpx.post(
                f"{web.url}/v1/calls",
                json={"agent": AGENTS[0], "to": f"+1415555011{i}"},
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": f"busy-{i}"},
                timeout=30,
            )
            assert answer.status_code == 202, answer.text
        assert web.store is not None
        assert web.store.revoke_api_key("doomed", now=time.time())
        events = _read_until_end(s)
    assert events[-1]["event"] == "stream.ended"
    assert json.loads(events[-1]["data"])["type"] == "key_revoked"
    assert any(e["event"].startswith("call.") for e in events)


def test_page_requests_pass_the_keys_rate_limit(web: Web) -> None:
    """The page's actions take from the same bucket as the key's Bearer requests."""
    key = web.make_key("slow", scopes=("watch", "dial"), agents=AGENTS, rate_per_minute=3)
    http, csrf = _signed_in(web, key)
    with closing(http):
        for _ in range(3):
            hung_up = http.delete("/v1/calls/call_none", headers={"X-CSRF-Token": csrf})
            assert hung_up.status_code == 404
        limited = http.post(
            "/v1/calls",
            json={"agent": AGENTS[0], "to": "+14155550100"},
            headers={"X-CSRF-Token": csrf, "Idempotency-Key": "rate-1"},
        )
        assert limited.status_code == 429, limited.text
        assert limited.json()["error"]["type"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
    bearer = httpx.get(f"{web.url}/v1/calls", headers={"Authorization": f"Bearer {key}"})
    assert bearer.status_code == 429
    assert web.emulator.calls_created() == []
