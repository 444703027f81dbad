"""Bad input gets the one JSON error shape, with where and how to fix; nothing is dialed."""

from __future__ import annotations

import socket

import pytest

from .conftest import Running

ALICE = "alice@example.com"
ANSWERS = "+14155550100"


def _error(answer: object, status: int) -> dict[str, object]:
    import httpx

    assert isinstance(answer, httpx.Response)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"type", "message", "hint", "path", "errors"}
    assert error["message"]
    return dict(error)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"agent": ALICE, "to": ANSWERS, "colour": "red"}, "$.colour"),
        ({"agent": ALICE, "to": "not a number"}, "$.to"),
        ({"agent": ALICE, "to": 14155550100}, "$.to"),
        ({"to": ANSWERS}, "$.agent"),
        ({"agent": ALICE, "to": ANSWERS, "attributes": {"a": 1}}, "$.attributes.a"),
        ([1, 2], "$"),
    ],
)
def test_invalid_bodies_are_422_with_a_json_path(running: Running, body: object, path: str) -> None:
    error = _error(running.dial(body, "bad"), 422)  # type: ignore[arg-type]
    assert error["path"] == path
    assert running.emulator.calls_created() == []


def test_malformed_json_is_400(running: Running) -> None:
    answer = running.http.post(
        "/v1/calls",
        content=b'{"agent": "alice@example.com", "to": ',
        headers=running.headers(**{"Idempotency-Key": "k", "Content-Type": "application/json"}),
    )
    assert _error(answer, 400)["type"] == "malformed_json"


def test_auth_errors(running: Running) -> None:
    body = {"agent": ALICE, "to": ANSWERS}
    assert _error(running.http.post("/v1/calls", json=body), 401)["type"] == "unauthorized"
    wrong = running.http.get("/v1/calls", headers={"Authorization": "Bearer gcd_nope"})
    assert _error(wrong, 401)["type"] == "unauthorized"
    watcher = running.make_key("watcher", scopes=("watch",))
    assert _error(running.dial(body, "w", key=watcher), 403)["type"] == "forbidden"
    revoked = running.make_key("gone")
    running.store.revoke_api_key("gone", now=0.0)
    assert _error(running.dial(body, "r", key=revoked), 401)["type"] == "unauthorized"
    assert running.emulator.calls_created() == []


def test_agent_outside_the_allow_list_is_403(running: Running) -> None:
    bob_only = running.make_key("bob-only", agents=("bob@example.com",))
    error = _error(running.dial({"agent": ALICE, "to": ANSWERS}, "a", key=bob_only), 403)
    assert (error["type"], error["path"]) == ("agent_not_allowed", "$.agent")
    assert running.emulator.calls_created() == []


def test_rate_limit_per_key(running: Running) -> None:
    slow = running.make_key("slow", rate_per_minute=2)
    for _ in range(2):
        assert running.http.get("/v1/calls", headers=running.headers(slow)).status_code == 200
    limited = running.http.get("/v1/calls", headers=running.headers(slow))
    assert _error(limited, 429)["type"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1


def _raw(running: Running, head: bytes) -> socket.socket:
    host, port = running.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        b"POST /v1/calls HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Idempotency-Key: k\r\nAuthorization: Bearer "
        + running.key.encode()
        + b"\r\n"
        + head
        + b"\r\n"
    )
    return sock


def test_huge_declared_body_is_413_before_it_is_read(running: Running) -> None:
    with _raw(running, b"Content-Length: %d\r\n" % (100 << 20)) as sock:
        reply = b""
        while b"request_too_large" not in reply and (part := sock.recv(65536)):
            reply += part
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"request_too_large" in reply


def test_100_mb_streamed_without_length_is_cut_off(running: Running) -> None:
    chunk = b"a" * (1 << 20)
    with _raw(running, b"Transfer-Encoding: chunked\r\n") as sock:
        sent = 0
        try:
            while sent < 100:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += 1
        except OSError:
            pass  # the server answered and closed: what we want
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_unknown_route_and_method_use_the_error_shape(running: Running) -> None:
    assert _error(running.http.get("/v2/nothing"), 404)["type"] == "not_found"
    assert _error(running.http.put("/v1/calls"), 405)["type"] == "method_not_allowed"


def test_no_key_or_secret_in_any_answer(running: Running) -> None:
    running.dial({"agent": ALICE, "to": ANSWERS}, "s")
    secret = running.emulator.client_secret
    for url in ("/v1/calls", "/openapi.json", "/metrics", "/readyz", "/healthz"):
        text = running.http.get(url, headers=running.headers()).text
        assert running.key not in text
        assert secret not in text
    row = running.store.find_api_key  # keys are stored only as hashes
    assert all(running.key not in str(k) for k in running.store.list_api_keys())
    assert row is not None
