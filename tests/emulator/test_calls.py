"""Create, follow and hang up calls over real HTTP; every simulated outcome."""

from datetime import datetime
from typing import Any

import httpx
import pytest

from gcdial.emulator import EmulatorServer

from .helpers import ALICE, DAVE, ERIN, api, assert_error, call_over, place_call, wait_for


def _parts(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    agents = [p for p in body["participants"] if p["purpose"] == "agent"]
    others = [p for p in body["participants"] if p["purpose"] != "agent"]
    assert len(agents) == 1
    return agents[0], (others[0] if others else None)


def test_create_returns_id_and_self_uri(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        response = http.post(
            f"/api/v2/conversations/calls/user/{ALICE}",
            json={"phoneNumber": "+14155550100", "callerId": "+14155550199"},
        )
    assert response.status_code == 200
    body = response.json()
    assert body["selfUri"] == f"/api/v2/conversations/calls/{body['id']}"
    [created] = emulator.calls_created()
    assert created["id"] == body["id"]
    assert created["userId"] == ALICE
    assert created["phoneNumber"] == "+14155550100"
    assert created["body"] == {"phoneNumber": "+14155550100", "callerId": "+14155550199"}


def test_answered_call_timeline(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        call_id = place_call(http, "+14155550100")
        first = http.get(f"/api/v2/conversations/calls/{call_id}").json()
        agent, customer = _parts(first)
        assert agent["state"] == "alerting"
        assert agent["user"]["id"] == ALICE
        assert customer is None
        connected = wait_for(
            lambda: (
                (c := _parts(http.get(f"/api/v2/conversations/calls/{call_id}").json())[1])
                and c["state"] == "connected"
                and c
            )
        )
        assert connected["address"] == "tel:+14155550100"
        assert connected["purpose"] == "external"
        assert connected["direction"] == "outbound"
        final = wait_for(lambda: call_over(http, call_id))
    agent, customer = _parts(final)
    assert customer is not None
    assert customer["disconnectType"] == "endpoint"
    assert agent["disconnectType"] == "peer"
    assert "connectedTime" in customer
    assert "endTime" in customer
    assert final["selfUri"] == f"/api/v2/conversations/calls/{call_id}"
    assert emulator.calls_created()[0]["state"] == "disconnected"


@pytest.mark.parametrize(
    ("number", "agent_type", "customer_type", "error_code"),
    [
        ("+14155550150", "peer", "inactivity", None),
        ("+14155550165", "peer", "peer", "error.ininedgecontrol.remote.busy"),
        ("+14155550177", "peer", "error", "error.ininedgecontrol.remote.address.invalid"),
        ("+14155550188", "peer", "transport.failure", "error.ininedgecontrol.network.failure"),
        ("+14155550191", "inactivity", None, None),
        ("+14155550199", "client", None, None),
    ],
)
def test_unanswered_outcomes(
    emulator: EmulatorServer,
    number: str,
    agent_type: str,
    customer_type: str | None,
    error_code: str | None,
) -> None:
    emulator.set_speed(200.0)
    with api(emulator) as http:
        call_id = place_call(http, number)
        final = wait_for(lambda: call_over(http, call_id))
    agent, customer = _parts(final)
    assert agent["disconnectType"] == agent_type
    if customer_type is None:
        assert customer is None
        return
    assert customer is not None
    assert customer["disconnectType"] == customer_type
    assert "connectedTime" not in customer
    if error_code is None:
        assert "errorInfo" not in customer
    else:
        assert customer["errorInfo"]["code"] == error_code


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize(("number", "talk_s"), [("+14155550100", 10), ("+14155550149", 59)])
def test_talk_time_follows_the_number(emulator: EmulatorServer, number: str, talk_s: int) -> None:
    emulator.set_speed(200.0)
    with api(emulator) as http:
        call_id = place_call(http, number)
        final = wait_for(lambda: call_over(http, call_id))
    _, customer = _parts(final)
    assert customer is not None
    talked = _seconds(customer["endTime"]) - _seconds(customer["connectedTime"])
    assert talked == pytest.approx(talk_s, abs=2.0)


def test_customer_purpose_is_configurable(make_emulator: Any) -> None:
    emu = make_emulator(speed=1000.0, customer_purpose="customer")
    with api(emu) as http:
        call_id = place_call(http, "+14155550150")
        final = wait_for(lambda: call_over(http, call_id))
    assert {p["purpose"] for p in final["participants"]} == {"agent", "customer"}


def test_patch_call_hangs_up_at_once(emulator: EmulatorServer) -> None:
    emulator.set_speed(1.0)
    with api(emulator) as http:
        call_id = place_call(http, "+14155550100")
        response = http.patch(
            f"/api/v2/conversations/calls/{call_id}", json={"state": "disconnected"}
        )
        assert response.status_code == 202
        body = http.get(f"/api/v2/conversations/calls/{call_id}").json()
    agent, customer = _parts(body)
    assert customer is None
    assert agent["state"] == "disconnected"
    assert agent["disconnectType"] == "client"


def test_patch_participant_hangs_up_that_leg(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        call_id = place_call(http, "+14155550149")
        customer = wait_for(
            lambda: _parts(http.get(f"/api/v2/conversations/calls/{call_id}").json())[1]
        )
        emulator.set_speed(1.0)
        response = http.patch(
            f"/api/v2/conversations/calls/{call_id}/participants/{customer['id']}",
            json={"state": "disconnected"},
        )
        assert response.status_code == 202
        final = http.get(f"/api/v2/conversations/calls/{call_id}").json()
    agent, customer = _parts(final)
    assert customer is not None
    assert customer["disconnectType"] == "client"
    assert agent["disconnectType"] == "peer"


def test_call_errors(emulator: EmulatorServer) -> None:
    base = "/api/v2/conversations/calls"
    with api(emulator) as http:
        assert_error(
            http.post(f"{base}/user/{DAVE}", json={"phoneNumber": "+14155550100"}),
            400,
            "conversation.error.no.user.station",
        )
        assert_error(
            http.post(f"{base}/user/{ERIN}", json={"phoneNumber": "+14155550100"}),
            400,
            "conversation.error.user.inactive",
        )
        missing = "99999999-9999-4999-8999-999999999999"
        body = assert_error(
            http.post(f"{base}/user/{missing}", json={"phoneNumber": "+14155550100"}),
            404,
            "not.found",
        )
        assert body["entityId"] == missing
        assert_error(http.get(f"{base}/{missing}"), 404, "not.found")
        assert_error(
            http.patch(f"{base}/{missing}", json={"state": "disconnected"}), 404, "not.found"
        )
    assert emulator.calls_created() == []
    assert emulator.request_counts()["internalErrors"] == 0


def test_no_station_message(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        response = http.post(
            f"/api/v2/conversations/calls/user/{DAVE}", json={"phoneNumber": "+14155550100"}
        )
    assert response.json()["message"] == "A station is required to place a call."


def test_unknown_route_and_missing_token(emulator: EmulatorServer) -> None:
    with httpx.Client(base_url=emulator.base_url) as http:
        assert_error(http.get("/api/v2/nothing/here"), 404, "not.found")
        assert_error(
            http.get(f"/api/v2/conversations/calls/{ALICE}"), 401, "authentication.required"
        )
        assert_error(
            http.get(
                f"/api/v2/users/{ALICE}", headers={"Authorization": "Bearer not-a-real-token"}
            ),
            401,
            "bad.credentials",
        )
