"""A supervisor chooses whom to watch: ``GET /v1/queues`` and ``GET /v1/agents?queue=``, over
real HTTP to the service against the emulator (members read once and shared)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from .conftest import Running

SALES = "9ee00001-0000-4000-8000-000000000001"
SUPPORT = "9ee00002-0000-4000-8000-000000000002"
MEMBERS_ROUTE = "GET /api/v2/routing/queues/{queueId}/members"
QUEUES_ROUTE = "GET /api/v2/routing/queues"


def _count(running: Running, route: str) -> int:
    by_route: dict[str, int] = running.emulator.request_counts()["byRoute"]
    return by_route.get(route, 0)


def _ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _error(answer: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert set(error) == {"type", "message", "hint", "path", "errors"}
    assert error["type"] == kind
    return error


def _agents(running: Running, key: str, **params: str) -> dict[str, Any]:
    return _ok(running.http.get("/v1/agents", params=params, headers=running.headers(key)))


def test_an_admin_key_without_agents_lists_queues_and_watches_a_queues_members(
    running: Running,
) -> None:
    before = _count(running, QUEUES_ROUTE)
    queues = _ok(running.http.get("/v1/queues", headers=running.headers(running.admin_key)))
    assert queues == {
        "queues": [{"id": SALES, "name": "Sales"}, {"id": SUPPORT, "name": "Support"}]
    }
    _ok(running.http.get("/v1/queues", headers=running.headers(running.admin_key)))
    assert _count(running, QUEUES_ROUTE) - before == 1, "the queue list is shared"

    members_before = _count(running, MEMBERS_ROUTE)
    page = _agents(running, running.admin_key, queue=SALES)
    assert page["queue"] == {"id": SALES, "name": "Sales"}
    assert page["membersNotShown"] == 0
    by_agent = {a["agent"]: a for a in page["agents"]}
    assert list(by_agent) == [
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
        "dave@example.com",
    ]
    # The one readiness of GET /v1/agents?agent= (gcdial.readiness), for each member.
    assert by_agent["alice@example.com"]["ready"] is True
    assert by_agent["alice@example.com"]["name"] == "Alice Anders"
    assert by_agent["carol@example.com"]["reason"] == "presence"
    assert by_agent["dave@example.com"]["reason"] == "no_station"
    single = _agents(running, running.admin_key, agent="dave@example.com")["agents"][0]
    readiness = ("ready", "reason", "problem", "station", "presence", "routingStatus")
    assert {k: single[k] for k in readiness} == {
        k: by_agent["dave@example.com"][k] for k in readiness
    }
    # Not ready before Genesys gave a name: the member listing's name and id fill them.
    assert single["name"] is None
    assert by_agent["dave@example.com"]["name"] == "Dave Diaz"
    assert by_agent["dave@example.com"]["id"] == "44444444-4444-4444-8444-444444444444"

    again = _agents(running, running.admin_key, queue="sales")  # by name, any case
    assert [a["agent"] for a in again["agents"]] == list(by_agent)
    with ThreadPoolExecutor(8) as pool:  # eight supervisors' pages at once
        pages = list(pool.map(lambda _: _agents(running, running.admin_key, queue=SALES), range(8)))
    assert all([a["agent"] for a in p["agents"]] == list(by_agent) for p in pages)
    assert _count(running, MEMBERS_ROUTE) - members_before == 1, "members read once, shared"


def test_a_key_limited_to_agents_sees_only_its_agents_among_the_members(
    running: Running,
) -> None:
    bob_only = running.make_key("bob-desk", scopes=("watch",), agents=("bob@example.com",))
    sales = _agents(running, bob_only, queue=SALES)
    assert [a["agent"] for a in sales["agents"]] == ["bob@example.com"]
    assert _agents(running, bob_only, queue="Support")["agents"] == []
    assert _ok(running.http.get("/v1/queues", headers=running.headers(bob_only)))["queues"]


def test_a_key_made_to_watch_a_queue_shows_its_members_by_default(running: Running) -> None:
    support = running.make_key("wallboard", scopes=("watch",), watch_queue="Support")
    page = _agents(running, support)
    assert page["queue"] == {"id": SUPPORT, "name": "Support"}
    assert [a["agent"] for a in page["agents"]] == ["carol@example.com", "erin@example.com"]
    assert page["agents"][1]["reason"] == "inactive"
    named = _agents(running, support, agent="alice@example.com")
    assert named["queue"] is None
    assert [a["agent"] for a in named["agents"]] == ["alice@example.com"]
    gone = running.make_key("old-board", scopes=("watch",), watch_queue="Closed queue")
    error = _error(
        running.http.get("/v1/agents", headers=running.headers(gone)), 404, "queue_not_found"
    )
    assert error["path"] == "key:watchQueue"


def test_unknown_queue_and_bad_requests_are_refused_in_the_error_shape(running: Running) -> None:
    admin = running.headers(running.admin_key)
    for ref in ("9ee00009-0000-4000-8000-000000000009", "No such queue", "../users/me"):
        error = _error(
            running.http.get("/v1/agents", params={"queue": ref}, headers=admin),
            404,
            "queue_not_found",
        )
        assert error["path"] == "query:queue"
        assert ref in error["message"]
    both = running.http.get(
        "/v1/agents", params={"queue": SALES, "agent": "alice@example.com"}, headers=admin
    )
    _error(both, 400, "agent_or_queue")
    _error(
        running.http.get("/v1/agents", params={"queue": ""}, headers=admin), 422, "invalid_request"
    )
    metrics_only = running.make_key("metrics", scopes=("metrics",))
    _error(running.http.get("/v1/queues", headers=running.headers(metrics_only)), 403, "forbidden")
    _error(running.http.get("/v1/queues"), 401, "unauthorized")


def test_a_groups_members_are_watched_as_a_queues_are(running: Running) -> None:
    team = "6a0e0001-0000-4000-8000-000000000001"
    admin = running.headers(running.admin_key)
    groups = _ok(running.http.get("/v1/groups", headers=admin))
    assert groups == {"groups": [{"id": team, "name": "Outbound team"}]}
    page = _agents(running, running.admin_key, group="outbound team")
    assert page["group"] == {"id": team, "name": "Outbound team"}
    assert page["queue"] is None
    assert [a["agent"] for a in page["agents"]] == [
        "alice@example.com",
        "bob@example.com",
        "dave@example.com",
    ]
    dave = running.make_key("dave-desk", scopes=("watch",), agents=("dave@example.com",))
    assert [a["agent"] for a in _agents(running, dave, group=team)["agents"]] == [
        "dave@example.com"
    ]
    missing = running.http.get("/v1/agents", params={"group": "Nobody"}, headers=admin)
    assert _error(missing, 404, "group_not_found")["path"] == "query:group"
    both = running.http.get("/v1/agents", params={"group": team, "queue": SALES}, headers=admin)
    _error(both, 400, "agent_or_queue")
