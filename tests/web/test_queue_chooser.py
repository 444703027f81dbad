"""A supervisor chooses whom to watch: an admin key made without --agents picks the sandbox
queue in the Agents panel and sees its members, live, in real headless Chromium."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page, expect

from gcdial.emulator import EmulatorServer

from .conftest import Web
from .test_live_presence import _genesys
from .test_page import shot, sign_in

SALES = "9ee00001-0000-4000-8000-000000000001"
BOB = "22222222-2222-4222-8222-222222222222"
MEMBERS = ("alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com")


def test_an_admin_key_without_agents_picks_a_queue_and_sees_its_members(
    web: Web, page: Page, emulator: EmulatorServer, tmp_path: Path
) -> None:
    console: list[str] = []

    def message(m: ConsoleMessage) -> None:
        if m.type == "error":
            console.append(m.text)

    page.on("console", message)

    admin = web.make_key("admin", scopes=("admin",), rate_per_minute=100_000)
    sign_in(page, web, admin)
    expect(page.locator("#agents")).to_contain_text("No agents yet")
    chooser = page.locator("#agents-queue")
    expect(chooser).to_be_visible()
    expect(chooser.locator("option")).to_have_text(
        ["Your key's agents and recent calls", "Sales", "Support", "Outbound team"]
    )
    chooser.select_option(label="Sales")
    for agent in MEMBERS:
        expect(page.locator(f"#agents tr[data-agent='{agent}']")).to_be_visible()
    expect(page.locator("#agents tr")).to_have_count(len(MEMBERS))
    expect(page.locator("#agents tr[data-agent='dave@example.com']")).to_contain_text("no station")
    assert f"queue={SALES}" in page.url

    # Live as the panel is for a key's agents: a member's routing change is pushed.
    bob = page.locator("#agents tr[data-agent='bob@example.com']")
    expect(bob).to_contain_text("idle")
    with _genesys(emulator) as genesys:
        routed = genesys.put(f"/api/v2/users/{BOB}/routingstatus", json={"status": "OFF_QUEUE"})
        assert routed.status_code == 200, routed.text
    expect(bob).to_contain_text("off queue", timeout=5_000)
    shot(page, tmp_path, "queue-chooser")

    page.reload()  # the choice is kept in the URL
    expect(page.locator("#agents-queue")).to_have_value(f"queue:{SALES}")
    expect(page.locator("#agents tr")).to_have_count(len(MEMBERS))

    chooser.select_option(label="Outbound team")  # a group's members, the same way
    expect(page.locator("#agents tr")).to_have_count(3)
    expect(page.locator("#agents tr[data-agent='carol@example.com']")).to_have_count(0)
    assert "group=" in page.url
    assert "queue=" not in page.url
    assert not [m for m in console if "Content Security Policy" in m], console
