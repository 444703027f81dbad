"""Agents' readiness for pages and GET /v1/agents: one Genesys check shared by every reader,
renewed at once by a presence change (the dial path never uses it)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from gcdial.serve.config import ServeConfig

from .conftest import Running

ALICE = "alice@example.com"


@pytest.fixture
def serve_config() -> ServeConfig:
    """Readiness kept an hour: only a presence change can renew it within this test."""
    return ServeConfig(sse_poll_s=0.2, agent_cache_s=3600)


def _user_reads(running: Running) -> int:
    by_route: dict[str, int] = running.emulator.request_counts()["byRoute"]
    return sum(n for route, n in by_route.items() if "/api/v2/users" in route)


def _alice(running: Running) -> dict[str, Any]:
    answer = running.http.get(
        "/v1/agents", params={"agent": ALICE}, headers=running.headers(running.admin_key)
    )
    assert answer.status_code == 200, answer.text
    agent: dict[str, Any] = answer.json()["agents"][0]
    return agent


def test_many_readers_share_one_check_and_a_presence_change_renews_it(running: Running) -> None:
    before = _user_reads(running)
    first = _alice(running)
    one_check = _user_reads(running) - before
    assert one_check >= 1
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: _alice(running), range(12)))
    assert all(a == first for a in answers)
    assert _user_reads(running) - before == one_check, "twelve readers cost nothing more"

    running.set_presence(first["id"], "Away")
    deadline = time.monotonic() + 10
    while (now := _alice(running))["presence"] != "AWAY" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert now["presence"] == "AWAY", "the presence change renewed the shared check"
