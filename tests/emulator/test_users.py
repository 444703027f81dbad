"""Agent endpoints: users with expand, stations, presences, search by email."""

from typing import Any

import pytest

from gcdial.emulator import EmulatorServer

from .helpers import ALICE, BOB, DAVE, ERIN, api, assert_error


def test_get_user(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        body = http.get(f"/api/v2/users/{ALICE}").json()
    assert body["id"] == ALICE
    assert body["email"] == "alice@example.com"
    assert body["state"] == "active"
    assert body["selfUri"] == f"/api/v2/users/{ALICE}"
    assert "presence" not in body
    assert "station" not in body


@pytest.mark.parametrize(
    "params",
    [
        {"expand": "presence,routingStatus,station"},
        [("expand", "presence"), ("expand", "routingStatus"), ("expand", "station")],
    ],
)
def test_get_user_with_expand(emulator: EmulatorServer, params: Any) -> None:
    with api(emulator) as http:
        bob = http.get(f"/api/v2/users/{BOB}", params=params).json()
        dave = http.get(f"/api/v2/users/{DAVE}", params={"expand": "station,nonsense"}).json()
    assert bob["presence"]["presenceDefinition"]["systemPresence"] == "ON_QUEUE"
    assert bob["routingStatus"]["status"] == "IDLE"
    assert bob["station"]["associatedStation"]["associatedUser"]["id"] == BOB
    assert dave["station"] == {}


def test_station_endpoint(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        alice = http.get(f"/api/v2/users/{ALICE}/station").json()
        dave = http.get(f"/api/v2/users/{DAVE}/station").json()
    assert alice["associatedStation"]["id"] == alice["effectiveStation"]["id"]
    assert dave == {}


@pytest.mark.parametrize(
    ("user", "presence"), [(ALICE, "Available"), (BOB, "On Queue"), (ERIN, "Offline")]
)
def test_presence_endpoint(emulator: EmulatorServer, user: str, presence: str) -> None:
    with api(emulator) as http:
        body = http.get(f"/api/v2/users/{user}/presences/purecloud").json()
    assert body["presenceDefinition"]["systemPresence"] == presence
    assert body["source"] == "PURECLOUD"


def test_search_by_email(emulator: EmulatorServer) -> None:
    query = {"query": [{"type": "EXACT", "fields": ["email"], "value": "Carol@Example.com"}]}
    with api(emulator) as http:
        found = http.post("/api/v2/users/search", json=query).json()
        none = http.post(
            "/api/v2/users/search",
            json={"query": [{"type": "EXACT", "fields": ["email"], "value": "zed@example.com"}]},
        ).json()
        many = http.post(
            "/api/v2/users/search",
            json={
                "query": [
                    {
                        "type": "EXACT",
                        "fields": ["email"],
                        "values": ["alice@example.com", "bob@example.com"],
                    }
                ],
                "expand": ["presence"],
            },
        ).json()
    assert found["total"] == 1
    assert found["results"][0]["email"] == "carol@example.com"
    assert none == {
        "total": 0,
        "pageSize": 25,
        "pageNumber": 1,
        "pageCount": 1,
        "types": ["users"],
        "results": [],
    }
    assert many["total"] == 2
    assert all("presence" in user for user in many["results"])


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": []},
        {"query": "alice"},
        {"query": [{"type": "CONTAINS", "fields": ["email"], "value": "a"}]},
        {"query": [{"type": "EXACT", "fields": ["shoeSize"], "value": "a"}]},
        {"query": [{"type": "EXACT", "fields": "email", "value": "a"}]},
        {"query": [{"type": "EXACT", "fields": ["email"]}]},
        {"query": [{"type": "EXACT", "fields": ["email"], "value": 7}]},
        {"query": ["x"]},
        {"query": [{"type": "EXACT", "fields": ["email"], "value": "a"}], "expand": "x"},
        [],
    ],
)
def test_search_rejects_bad_bodies(emulator: EmulatorServer, body: Any) -> None:
    with api(emulator) as http:
        assert_error(http.post("/api/v2/users/search", json=body), 400, "bad.request")
    assert emulator.request_counts()["internalErrors"] == 0


def test_unknown_user_everywhere(emulator: EmulatorServer) -> None:
    missing = "99999999-9999-4999-8999-999999999999"
    with api(emulator) as http:
        for suffix in ("", "/station", "/presences/purecloud"):
            assert_error(http.get(f"/api/v2/users/{missing}{suffix}"), 404, "not.found")


def test_generated_agents(make_emulator: Any, tmp_path: Any) -> None:
    fixture = tmp_path / "bench.json"
    fixture.write_text(
        '{"clients": [{"id": "c", "secret": "s", "grant": "client_credentials"}],'
        ' "generate_agents": {"count": 50, "email_domain": "bench.example.com"}}'
    )
    emu = make_emulator(fixture=fixture)
    assert (emu.client_id, emu.client_secret) == ("c", "s")
    query = {
        "query": [{"type": "EXACT", "fields": ["email"], "value": "agent050@bench.example.com"}]
    }
    with api(emu) as http:
        [agent] = http.post("/api/v2/users/search", json=query).json()["results"]
        station = http.get(f"/api/v2/users/{agent['id']}/station").json()
        created = http.post(
            f"/api/v2/conversations/calls/user/{agent['id']}", json={"phoneNumber": "+14155550100"}
        )
    assert agent["name"] == "Agent 050"
    assert station["associatedStation"]["id"]
    assert created.status_code == 200
