"""The page's session cookie and CSRF token (pure), and the page's endpoints over HTTP."""

from __future__ import annotations

import re
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

from .conftest import Web

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
        forged = anonymous.get("/v1/calls", cookies={"gcdial_page": "key_1.9999999999.n.mac"})
        assert forged.status_code == 401
        assert forged.json()["error"]["type"] == "signed_out"
        page = anonymous.get("/")
        assert page.status_code == 200
        assert "Sign in" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
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
