"""Every fault mode, over real HTTP, and the admin API that manages them."""

import time
from typing import Any

import httpx
import pytest

from gcdial.emulator import EmulatorConfig, EmulatorServer
from gcdial.emulator.faults import FaultSpec

from .helpers import ALICE, api, assert_error, client_token

CREATE = f"/api/v2/conversations/calls/user/{ALICE}"
BODY = {"phoneNumber": "+14155550170"}


def test_status_fault_answers_before_the_call_is_created(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="create_call", mode="status", status=503, count=1)
    with api(emulator) as http:
        assert_error(http.post(CREATE, json=BODY), 503, "service.unavailable")
        assert emulator.calls_created() == []
        assert http.post(CREATE, json=BODY).status_code == 200
    assert len(emulator.calls_created()) == 1


def test_status_fault_with_code_and_retry_after(emulator: EmulatorServer) -> None:
    emulator.add_fault(
        route="get_call", mode="status", status=429, code="too.many.requests", retry_after=7
    )
    with api(emulator) as http:
        response = http.get(f"/api/v2/conversations/calls/{ALICE}")
    assert_error(response, 429, "too.many.requests")
    assert response.headers["Retry-After"] == "7"


def test_status_fault_on_any_route_and_on_the_token(emulator: EmulatorServer) -> None:
    token = client_token(emulator)
    emulator.add_fault(route="token", mode="status", status=500)
    with httpx.Client(base_url=emulator.base_url) as http:
        response = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(emulator.client_id, emulator.client_secret),
        )
    assert_error(response, 500, "internal.server.error")
    emulator.clear_faults()
    emulator.add_fault(route="any", mode="status", status=403, code="missing.permissions")
    with api(emulator, token) as http:
        assert_error(http.get(f"/api/v2/users/{ALICE}"), 403, "missing.permissions")
        assert_error(http.post("/api/v2/notifications/channels"), 403, "missing.permissions")
    assert emulator.request_counts()["internalErrors"] == 0


def test_probability_is_a_share_and_reproducible(make_emulator: Any) -> None:
    outcomes = []
    for _ in range(2):
        emu = make_emulator(seed=7)
        emu.add_fault(route="users", mode="status", status=502, probability=0.5)
        with api(emu) as http:
            outcomes.append([http.get(f"/api/v2/users/{ALICE}").status_code for _ in range(30)])
    assert outcomes[0] == outcomes[1]
    assert 5 < outcomes[0].count(502) < 25
    assert set(outcomes[0]) == {200, 502}


def test_latency_fault_delays_the_answer(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="users", mode="latency", seconds=0.3, count=1)
    with api(emulator) as http:
        started = time.monotonic()
        assert http.get(f"/api/v2/users/{ALICE}").status_code == 200
        slow = time.monotonic() - started
        started = time.monotonic()
        http.get(f"/api/v2/users/{ALICE}")
        fast = time.monotonic() - started
    assert slow >= 0.3
    assert fast < 0.3


def test_drop_after_create_cuts_the_response_but_creates_the_call(
    emulator: EmulatorServer,
) -> None:
    emulator.add_fault(route="create_call", mode="drop_after_create", count=1)
    with api(emulator) as http, pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.post(CREATE, json=BODY)
    [call] = emulator.calls_created()
    assert call["phoneNumber"] == "+14155550170"
    with api(emulator) as http:
        assert http.post(CREATE, json=BODY).status_code == 200
    assert len(emulator.calls_created()) == 2


def test_hang_after_create_withholds_the_response(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="create_call", mode="hang_after_create", seconds=30, count=1)
    with api(emulator) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post(CREATE, json=BODY, timeout=0.3)
        assert len(emulator.calls_created()) == 1
        assert http.get(f"/api/v2/users/{ALICE}").status_code == 200


def test_hang_after_create_answers_late(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="create_call", mode="hang_after_create", seconds=0.2)
    with api(emulator) as http:
        started = time.monotonic()
        response = http.post(CREATE, json=BODY)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_admin_lists_and_removes_faults(emulator: EmulatorServer) -> None:
    first = emulator.add_fault(route="users", mode="status", status=500)
    emulator.add_fault(route="get_call", mode="latency", seconds=1, count=3)
    with httpx.Client(base_url=emulator.base_url) as http:
        listed = http.get("/_emulator/faults").json()["faults"]
        assert [f["route"] for f in listed] == ["users", "get_call"]
        assert listed[1]["remaining"] == 3
        emulator.remove_fault(first)
        assert len(http.get("/_emulator/faults").json()["faults"]) == 1
        assert_error(http.delete(f"/_emulator/faults/{first}"), 404, "not.found")
        emulator.clear_faults()
        assert http.get("/_emulator/faults").json() == {"faults": []}


@pytest.mark.parametrize(
    "fault",
    [
        {"route": "get_call", "mode": "drop_after_create"},
        {"route": "any", "mode": "hang_after_create"},
        {"route": "users", "mode": "status"},
        {"route": "users", "mode": "status", "status": 200},
        {"route": "users", "mode": "latency", "status": 500},
        {"route": "nowhere", "mode": "status", "status": 500},
        {"route": "users", "mode": "explode"},
        {"route": "users", "mode": "status", "status": 500, "probability": 2},
        {"route": "users", "mode": "status", "status": 500, "colour": "red"},
    ],
)
def test_invalid_faults_are_rejected(emulator: EmulatorServer, fault: dict[str, Any]) -> None:
    with httpx.Client(base_url=emulator.base_url) as http:
        response = http.post("/_emulator/faults", json=fault)
        assert_error(response, 400, "bad.request")
        assert_error(http.post("/_emulator/faults", content=b"{"), 400, "bad.request")
    assert emulator.request_counts()["internalErrors"] == 0


def test_faults_configured_at_start(make_emulator: Any) -> None:
    config = EmulatorConfig(
        speed=50.0,
        admin=True,
        faults=(FaultSpec(route="users", mode="status", status=504, count=1),),
    )
    emu = make_emulator(config)
    with api(emu) as http:
        assert_error(http.get(f"/api/v2/users/{ALICE}"), 504, "gateway.timeout")
        assert http.get(f"/api/v2/users/{ALICE}").status_code == 200


def test_admin_api_is_off_by_default(make_emulator: Any) -> None:
    emu = make_emulator(admin=False)
    with httpx.Client(base_url=emu.base_url) as http:
        assert_error(http.get("/_emulator/calls"), 404, "not.found")
        assert_error(http.post("/_emulator/reset"), 404, "not.found")
