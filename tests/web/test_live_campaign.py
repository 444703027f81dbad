"""A campaign run by the service shows on the page live: its calls in the Calls panel ("placed by:
campaign NAME", step, timer, outcome) and its agent busy in the Agents panel, without a reload."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from gcdial.emulator import EmulatorServer

from .conftest import ALICE, Web
from .test_page import shot, sign_in

TALKS = "+14155550112"  # answered, talks 22 s on the emulator's clock


def test_campaign_calls_show_live_in_calls_and_agents(
    web: Web, page: Page, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.set_speed(4.0)
    ops = web.make_key(
        "ops", scopes=("watch", "dial", "campaigns"), agents=(ALICE,), rate_per_minute=100_000
    )
    sign_in(page, web, ops)
    page.evaluate("() => { window.notReloaded = true; }")
    headers = {"Authorization": f"Bearer {ops}"}
    created = httpx.post(
        f"{web.url}/v1/campaigns",
        files={"file": ("spring.csv", f"phone\n{TALKS}\n".encode(), "text/csv")},
        data={"agents": ALICE, "name": "Spring", "window": "00:00-23:59"},
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    started = httpx.post(f"{web.url}/v1/campaigns/{cid}/start", headers=headers, timeout=30)
    assert started.status_code == 200, started.text

    row = page.locator("#active tr[data-call]")
    expect(row).to_contain_text("campaign Spring")
    expect(row).to_contain_text(TALKS)
    expect(row.locator(".step")).to_have_text("talking", timeout=20_000)
    expect(row.locator(".timer")).to_have_text(re.compile(r"^\d+:\d\d$"))
    agent = page.locator(f"#agents tr[data-agent='{ALICE}']")
    expect(agent).to_contain_text("talking · " + TALKS)
    expect(row.get_by_role("button", name="Hang up")).to_be_visible()
    shot(page, tmp_path, "campaign-call-talking")

    call_id = row.get_attribute("data-call")
    expect(row).to_have_count(0, timeout=20_000)
    recent = page.locator(f"#recent tr[data-call='{call_id}']")
    expect(recent).to_contain_text("answered")
    expect(recent).to_contain_text("campaign Spring")
    expect(agent).to_contain_text("idle")
    assert page.evaluate("window.notReloaded") is True
    # Filter by who placed it.
    page.select_option("#filters select[name=source]", "api")
    expect(recent).to_have_count(0)
    page.select_option("#filters select[name=source]", "campaign")
    expect(recent).to_be_visible()
    shot(page, tmp_path, "campaign-call-answered")
