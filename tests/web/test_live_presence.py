"""Agents' presence reaches the page pushed over the service's notifications channel, within a
couple of seconds (the fallback poll, every 15 s, is off while the channel is up)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from gcdial.emulator import EmulatorServer

from .conftest import ALICE, Web
from .test_page import shot, sign_in


def _genesys(emulator: EmulatorServer) -> httpx.Client:
    """A Genesys API client with a client-credentials token (as a supervisor's tool would)."""
    token = httpx.post(
        emulator.base_url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(emulator.client_id, emulator.client_secret),
    ).json()["access_token"]
    return httpx.Client(
        base_url=emulator.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_presence_and_routing_changes_show_within_seconds(
    web: Web, page: Page, emulator: EmulatorServer, tmp_path: Path
) -> None:
    sign_in(page, web)
    expect(page.locator("#presence-mode")).to_have_text("Presence: live")
    row = page.locator(f"#agents tr[data-agent='{ALICE}']")
    expect(row).to_contain_text("available")
    agents: dict[str, Any] = page.evaluate("fetch('/v1/agents').then((r) => r.json())")
    alice = next(a for a in agents["agents"] if a["agent"] == ALICE)
    with _genesys(emulator) as genesys:
        changed = genesys.patch(
            f"/api/v2/users/{alice['id']}/presences/purecloud",
            json={"presenceDefinition": {"id": "presence-away"}},
        )
        assert changed.status_code == 200, changed.text
        expect(row).to_contain_text("away", timeout=3_000)
        routed = genesys.put(
            f"/api/v2/users/{alice['id']}/routingstatus", json={"status": "OFF_QUEUE"}
        )
        assert routed.status_code == 200, routed.text
        expect(row).to_contain_text("off queue", timeout=3_000)
    shot(page, tmp_path, "presence-pushed")
    assert web.store is not None
    pushed = [
        json.loads(e.data)["agent"]
        for e in web.store.events_after(0)
        if e.type == "agent.updated" and json.loads(e.data).get("agent")
    ]
    assert {"id": alice["id"], "agent": ALICE, "presence": "AWAY"} in pushed
    assert {"id": alice["id"], "agent": ALICE, "routingStatus": "OFF_QUEUE"} in pushed


def test_without_a_notifications_channel_the_page_says_it_polls(
    web: Web, page: Page, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.add_fault(route="notifications", mode="status", status=403, code="missing.permissions")
    web.restart()  # the service starts without a channel
    sign_in(page, web)
    expect(page.locator("#presence-mode")).to_contain_text(
        "live updates unavailable; refreshed every 15 s"
    )
    expect(page.locator(f"#agents tr[data-agent='{ALICE}']")).to_contain_text("available")
    shot(page, tmp_path, "presence-polled")
