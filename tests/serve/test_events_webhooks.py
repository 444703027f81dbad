"""SSE streams with resume, and signed webhooks from the durable outbox (retries, restarts)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gcdial.emulator import EmulatorServer
from gcdial.serve.server import ServeServer
from gcdial.serve.signing import verify

from .conftest import Running, start_service

ALICE = "alice@example.com"


def sse_events(response: httpx.Response, count: int) -> list[dict[str, str]]:
    """The first ``count`` events of an SSE stream (comments skipped)."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if current:
                events.append(current)
                current = {}
                if len(events) == count:
                    return events
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        current[name] = value.removeprefix(" ")
    return events


def test_call_events_stream_ends_with_the_outcome_and_resumes(running: Running) -> None:
    call = running.dial({"agent": ALICE, "to": "+14155550100"}, "sse-1").json()
    url = f"/v1/calls/{call['id']}/events"
    with running.http.stream("GET", url, headers=running.headers()) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response, 100)
    types = [e["event"] for e in events]
    assert types[0] == "call.placing"
    assert types[1] == "call.placed"
    assert types[-1] == "call.ended"
    assert json.loads(events[-1]["data"])["call"]["outcome"] == "answered"
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids)
    # Resume after the second event: exactly the rest, no repeats.
    resume = running.headers(**{"Last-Event-ID": events[1]["id"]})
    with running.http.stream("GET", url, headers=resume) as response:
        rest = sse_events(response, 100)
    assert [e["id"] for e in rest] == [e["id"] for e in events[2:]]


def test_revoking_a_key_ends_its_open_stream(running: Running) -> None:
    """The stream asks again on a timer, whether events flow or not: after a revocation, the
    stream ends with a stream.ended event saying why (the read timeout only stops a hang)."""
    key = running.make_key("doomed", scopes=("dial", "watch"), rate_per_minute=100_000)
    timeout = httpx.Timeout(30, read=8)
    with running.http.stream(
        "GET", "/v1/events", headers=running.headers(key), timeout=timeout
    ) as response:
        assert response.status_code == 200
        call = running.dial({"agent": ALICE, "to": "+14155550100"}, "doomed-1", key=key).json()
        assert running.store.revoke_api_key("doomed", now=time.time())
        events = sse_events(response, 10_000)  # until the service ends it (or the read times out)
    assert events[-1]["event"] == "stream.ended"
    assert json.loads(events[-1]["data"])["type"] == "key_revoked"
    assert call["id"]
    assert running.http.get("/v1/events", headers=running.headers(key)).status_code == 401


def test_bad_last_event_id_is_400(running: Running) -> None:
    answer = running.http.get("/v1/events", headers=running.headers(**{"Last-Event-ID": "x"}))
    assert answer.status_code == 400
    assert answer.json()["error"]["path"] == "header:Last-Event-ID"


@dataclass
class Receiver:
    """A webhook receiver: answers ``fail_first`` times with 500 (or sleeps), then 204."""

    fail_first: int = 0
    sleep_s: float = 0.0
    got: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.attempts += 1
            if self.attempts <= self.fail_first:
                if self.sleep_s:
                    await asyncio.sleep(self.sleep_s)
                return Response(status_code=500)
            self.got.append({"headers": dict(request.headers), "body": await request.body()})
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()
    with ServeServer(state.app()) as server:
        yield state, server.base_url + "/hook"


def _register(running: Running, url: str) -> dict[str, Any]:
    created = running.http.post(
        "/v1/webhooks", json={"url": url}, headers=running.headers(running.admin_key)
    )
    assert created.status_code == 201, created.text
    endpoint: dict[str, Any] = created.json()
    return endpoint


def _wait(condition: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_webhooks_are_signed_and_retried_until_accepted(
    running: Running, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    state.fail_first = 2
    hook = _register(running, url)
    assert hook["secret"].startswith("whsec_")
    listed = running.http.get("/v1/webhooks", headers=running.headers(running.admin_key)).json()
    assert "secret" not in listed[0]
    call = running.dial({"agent": ALICE, "to": "+14155550100"}, "wh-1").json()
    running.wait_call(call["id"], lambda c: c["ended"])
    _wait(lambda: any(json.loads(g["body"])["type"] == "call.ended" for g in state.got))
    now = time.time()
    for got in state.got:
        h = got["headers"]
        assert verify(hook["secret"], h["webhook-id"], h["webhook-timestamp"], got["body"],
                      h["webhook-signature"], now=now)  # fmt: skip
        assert not verify("whsec_" + "A" * 44, h["webhook-id"], h["webhook-timestamp"],
                          got["body"], h["webhook-signature"], now=now)  # fmt: skip
    ids = [g["headers"]["webhook-id"] for g in state.got]
    assert len(ids) == len(set(ids))
    assert state.attempts == len(state.got) + 2
    # One event shape for webhooks and SSE: no internal id of the key that placed the call.
    for got in state.got:
        assert "apiKeyId" not in json.loads(got["body"])["data"]
    assert "apiKeyId" not in str(state.got)
    # Non-admin keys may not manage webhooks.
    denied = running.http.get("/v1/webhooks", headers=running.headers())
    assert denied.status_code == 403


def test_outbox_survives_a_restart(
    emulator: EmulatorServer, tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    path = tmp_path / "serve.sqlite3"
    server, store = start_service(emulator, path)
    from gcdial.serve.store import WebhookEndpoint

    # No service runs while the event is recorded...
    store.add_webhook(WebhookEndpoint(id="w1", url=url, secret="whsec_" + "A" * 44, created_at=0))
    server.stop()
    store.append_event("call.placed", "c1", json.dumps({"call": {"id": "c1"}}), now=time.time())
    store.close()
    assert state.got == []
    # ... and delivered by the next process.
    server, store = start_service(emulator, path)
    try:
        _wait(lambda: len(state.got) == 1 and store.outbox_backlog() == 0)
    finally:
        server.stop()
        store.close()


def test_receiver_failing_for_long_ends_in_dead_letters_not_loss(
    running: Running, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    state.fail_first = 10_000
    _register(running, url)
    running.dial({"agent": "dave@example.com", "to": "+14155550100"}, "wh-dead")
    _wait(lambda: running.store.outbox_backlog() == 0 and running.store.dead_deliveries())
    dead = running.store.dead_deliveries()
    assert {d.last_error for d in dead} == {"HTTP 500"}
    assert all(d.attempts == 4 for d in dead)  # the first try and 3 retries of the schedule


def test_metrics_and_readiness(running: Running) -> None:
    call = running.dial({"agent": ALICE, "to": "+14155550100"}, "m-1").json()
    running.wait_call(call["id"], lambda c: c["ended"])
    # /metrics is for an operator's key (metrics or admin scope), not for anyone.
    assert running.http.get("/metrics").status_code == 401
    assert running.http.get("/metrics", headers=running.headers()).status_code == 403
    operator = running.make_key("prometheus", scopes=("metrics",))
    for key in (operator, running.admin_key):
        answer = running.http.get("/metrics", headers=running.headers(key))
        assert answer.status_code == 200, answer.text
    text = answer.text
    assert 'gcdial_serve_dials_total{status="placed"} 1.0' in text
    # Named for what they count: calls over by outcome are not review verdicts.
    assert 'gcdial_serve_calls_ended_total{outcome="answered"} 1.0' in text
    assert "gcdial_serve_verdicts" not in text
    for name in ("gcdial_serve_genesys_rate_limited_responses_total",
                 "gcdial_serve_api_requests_rate_limited_total"):  # fmt: skip
        assert f"# TYPE {name} counter" in text, name
    assert "gcdial_serve_genesys_rate_budget_remaining " in text
    assert "gcdial_serve_webhook_backlog 0.0" in text
    assert running.http.get("/readyz").json() == {"status": "ready"}
    assert running.http.get("/healthz").json() == {"status": "ok"}


def test_readyz_fails_when_genesys_refuses_the_token(running: Running) -> None:
    running.emulator.revoke_tokens()
    running.emulator.add_fault(route="token", mode="status", status=401)
    # Anonymous: a bare status, nothing about the upstream (no URL, no error text).
    anonymous = running.http.get("/readyz")
    assert anonymous.status_code == 503
    assert anonymous.json()["error"]["type"] == "not_ready"
    assert anonymous.json()["error"]["errors"] == []
    assert anonymous.json()["error"]["message"] == "Not ready."
    assert running.emulator.base_url not in anonymous.text
    assert running.http.get("/readyz", headers=running.headers()).json()["error"]["errors"] == []
    # An operator's key sees which check failed and why.
    answer = running.http.get("/readyz", headers=running.headers(running.admin_key))
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["type"] == "not_ready"
    assert [item["path"] for item in error["errors"]] == ["genesys"]
    assert running.emulator.client_secret not in answer.text


def test_a_slow_sse_reader_does_not_hold_others_up(running: Running) -> None:
    host, port = running.base_url.removeprefix("http://").split(":")
    import socket

    # A client that opens the stream and never reads.
    with socket.create_connection((host, int(port))) as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        auth = f"Authorization: Bearer {running.key}\r\n"
        stalled.sendall(f"GET /v1/events HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
        for i in range(20):
            running.dial({"agent": ALICE, "to": f"+141555501{i:02d}"}, f"slow-{i}")
        call = running.dial({"agent": ALICE, "to": "+14155550100"}, "slow-last").json()
        with running.http.stream(
            "GET", f"/v1/calls/{call['id']}/events", headers=running.headers()
        ) as response:
            events = sse_events(response, 100)
        assert events[-1]["event"] == "call.ended"


def test_receiver_that_times_out_is_retried_then_dead_lettered(
    emulator: EmulatorServer, tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    from gcdial.serve.config import ServeConfig
    from gcdial.serve.store import WebhookEndpoint

    state, url = receiver
    state.fail_first, state.sleep_s = 10_000, 2.0
    config = ServeConfig(
        webhook_timeout_s=0.3,
        webhook_schedule=(0.1,),
        webhook_poll_s=0.1,
        allow_insecure_webhooks=True,
    )
    server, store = start_service(emulator, tmp_path / "s.sqlite3", config)
    try:
        store.add_webhook(
            WebhookEndpoint(id="w", url=url, secret="whsec_" + "A" * 44, created_at=0)
        )
        store.append_event("call.placed", "c1", json.dumps({"call": {}}), now=time.time())
        _wait(lambda: bool(store.dead_deliveries()))
        (dead,) = store.dead_deliveries()
        assert (dead.attempts, dead.last_error) == (2, "timed out")
    finally:
        server.stop()
        store.close()
