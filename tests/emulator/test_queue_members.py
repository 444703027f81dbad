"""A queue's members (``GET /api/v2/routing/queues/{queueId}/members``), over real HTTP."""

from typing import Any

import pytest

from gcdial.emulator import EmulatorServer
from gcdial.emulator.fixtures import FixtureError, parse_fixture

from .helpers import api, assert_error

SALES = "9ee00001-0000-4000-8000-000000000001"
SUPPORT = "9ee00002-0000-4000-8000-000000000002"
BOB = "22222222-2222-4222-8222-222222222222"


def _members(http: Any, queue: str, **params: Any) -> dict[str, Any]:
    response = http.get(f"/api/v2/routing/queues/{queue}/members", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_members_page_to_the_end_by_next_uri(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        first = _members(http, SALES, pageSize=3)
        assert [m["user"]["email"] for m in first["entities"]] == [
            "alice@example.com",
            "bob@example.com",
            "carol@example.com",
        ]
        assert "total" not in first
        assert "pageCount" not in first
        second = http.get(first["nextUri"]).json()
        assert [m["name"] for m in second["entities"]] == ["Dave Diaz"]
        assert "nextUri" not in second
        assert second["previousUri"].endswith("pageNumber=1")
        support = _members(http, SUPPORT)
        assert [m["user"]["email"] for m in support["entities"]] == [
            "carol@example.com",
            "erin@example.com",
        ]


def test_a_member_shows_their_routing_status_as_it_changes(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        [bob] = [m for m in _members(http, SALES)["entities"] if m["id"] == BOB]
        assert bob["routingStatus"]["status"] == "IDLE"
        assert bob["joined"] is True
        put = http.put(f"/api/v2/users/{BOB}/routingstatus", json={"status": "OFF_QUEUE"})
        assert put.status_code == 200, put.text
        [bob] = [m for m in _members(http, SALES)["entities"] if m["id"] == BOB]
        assert bob["routingStatus"]["status"] == "OFF_QUEUE"


def test_unknown_queue_and_bad_page_size_are_refused(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        assert_error(http.get("/api/v2/routing/queues/nope/members"), 404, "not.found")
        too_big = http.get(f"/api/v2/routing/queues/{SALES}/members", params={"pageSize": 101})
        assert_error(too_big, 400, "bad.request")


def test_fixture_members_default_to_everyone_and_are_checked() -> None:
    base: dict[str, Any] = {
        "clients": [{"id": "c", "secret": "s", "grant": "client_credentials"}],
        "users": [
            {
                "key": "ann",
                "id": "11111111-1111-4111-8111-111111111111",
                "name": "Ann",
                "email": "ann@example.com",
            },
        ],
        "generate_agents": {"count": 2, "email_domain": "example.org"},
    }
    queue = {"id": "9ee00001-0000-4000-8000-000000000009", "name": "Q"}
    fixture = parse_fixture({**base, "queues": [queue]}, source="f")
    assert len(fixture.queue_members(fixture.queues[0])) == 3
    with pytest.raises(FixtureError, match=r"queues\[0\]\.members\[0\]: no user"):
        parse_fixture({**base, "queues": [{**queue, "members": ["zed"]}]}, source="f")


def test_a_groups_members_are_users_paged_like_other_listings(emulator: EmulatorServer) -> None:
    team = "6a0e0001-0000-4000-8000-000000000001"
    with api(emulator) as http:
        groups = http.get("/api/v2/groups").json()
        assert [(g["name"], g["memberCount"]) for g in groups["entities"]] == [("Outbound team", 3)]
        first = http.get(f"/api/v2/groups/{team}/members", params={"pageSize": 2}).json()
        assert [u["email"] for u in first["entities"]] == ["alice@example.com", "bob@example.com"]
        assert first["pageCount"] == 2
        second = http.get(first["nextUri"]).json()
        assert [u["email"] for u in second["entities"]] == ["dave@example.com"]
        assert_error(http.get("/api/v2/groups/nope/members"), 404, "not.found")
    with pytest.raises(FixtureError, match=r"groups\[0\]\.members\[0\]: no user"):
        parse_fixture(
            {
                "clients": [{"id": "c", "secret": "s", "grant": "client_credentials"}],
                "groups": [{"id": team, "name": "G", "members": ["zed"]}],
            },
            source="f",
        )
