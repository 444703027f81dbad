"""EmulatorServer lifecycle, the simulated clock and the admin clock endpoint."""

import asyncio
import gc
import threading
import time
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from gcdial.emulator import EmulatorConfig, EmulatorServer
from gcdial.emulator.clock import SimClock
from gcdial.emulator.ratelimit import RateLimiter

from .helpers import ALICE, api, assert_error, place_call


def test_stop_is_clean_and_quick_with_work_in_flight() -> None:
    server = EmulatorServer(EmulatorConfig(speed=1.0, admin=True)).start()
    answers: list[object] = []
    with api(server) as http:
        place_call(http, "+14155550149")
        channel = http.post("/api/v2/notifications/channels").json()
        server.add_fault(route="create_call", mode="hang_after_create", seconds=60)

        def hanging() -> None:
            try:
                url = f"/api/v2/conversations/calls/user/{ALICE}"
                answers.append(http.post(url, json={"phoneNumber": "+14155550100"}).status_code)
            except httpx.HTTPError as exc:
                answers.append(exc)

        with connect(channel["connectUri"]) as ws:
            thread = threading.Thread(target=hanging)
            thread.start()
            time.sleep(0.2)
            started = time.monotonic()
            server.stop()
            stopped_in = time.monotonic() - started
            thread.join(5)
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)
    gc.collect()
    assert stopped_in < 3.0
    assert not thread.is_alive()
    assert answers == [503]
    server.stop()


def test_base_url_and_credentials(emulator: EmulatorServer) -> None:
    assert emulator.base_url.startswith("http://127.0.0.1:")
    assert (emulator.client_id, emulator.client_secret) == ("sandbox-client", "sandbox-secret")


def test_admin_calls_need_a_running_server() -> None:
    server = EmulatorServer(EmulatorConfig(admin=True))
    with pytest.raises(RuntimeError, match="not running"):
        server.calls_created()


def test_admin_clock(emulator: EmulatorServer) -> None:
    with httpx.Client(base_url=emulator.base_url) as http:
        before = http.get("/_emulator/clock").json()
        assert before["speed"] == 50.0
        emulator.set_speed(2.5)
        after = http.get("/_emulator/clock").json()
        assert after["speed"] == 2.5
        assert after["now"] >= before["now"]
        for bad in ({"speed": 0}, {"speed": "fast"}, {"speed": True}, {}):
            assert_error(http.post("/_emulator/clock", json=bad), 400, "bad.request")


async def test_sim_clock_follows_speed_changes_while_sleeping() -> None:
    clock = SimClock(1.0)
    sleeper = asyncio.ensure_future(clock.sleep(100.0))
    await asyncio.sleep(0.01)
    assert not sleeper.done()
    clock.set_speed(10_000.0)
    await asyncio.wait_for(sleeper, timeout=1.0)
    assert clock.now() >= 100.0


def test_sim_clock_iso_format() -> None:
    clock = SimClock(1.0)
    stamp = clock.iso(0.5)
    assert stamp.endswith("Z")
    assert len(stamp) == len("2026-11-25T08:49:03.123Z")


def test_rate_limiter_fixed_window() -> None:
    now = [0.0]
    limiter = RateLimiter(
        per_window=2, buckets={"create_call": 1}, window_s=60, clock=lambda: now[0]
    )
    assert [limiter.hit("t", "users").allowed for _ in range(3)] == [True, True, False]
    assert limiter.hit("t", "create_call").allowed
    refused = limiter.hit("t", "create_call")
    assert not refused.allowed
    now[0] = 59.2
    assert limiter.hit("t", "users").headers()["inin-ratelimit-reset"] == "1"
    now[0] = 60.0
    decision = limiter.hit("t", "users")
    assert decision.allowed
    assert decision.count == 1
    assert decision.headers()["inin-ratelimit-reset"] == "60"


def test_every_admin_helper(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        place_call(http, "+14155550170")
    counts: dict[str, Any] = emulator.request_counts()
    assert counts["total"] == 2
    assert counts["byRoute"] == {
        "POST /oauth/token": 1,
        "POST /api/v2/conversations/calls/user/{userId}": 1,
    }
    emulator.reset()
    assert emulator.calls_created() == []
    assert emulator.request_counts() == {
        "total": 0,
        "byRoute": {},
        "internalErrors": 0,
        "clientDisconnects": 0,
    }
