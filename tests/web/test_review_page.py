"""The page's Review panel in real Chromium: verdicts on campaign attempts of unknown outcome,
reassigning contacts pinned to an agent who is gone, and two supervisors racing on one verdict.

The unknowns come from the emulator's faults (create-call 503, analytics down: nothing can prove
either way); the pinned contacts from a CSV naming an agent who is not one of the campaign's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from gcdial.campaign.journal import Journal
from gcdial.emulator import EmulatorServer
from gcdial.serve.campaign_journals import CampaignJournals
from gcdial.serve.config import ServeConfig

from .browser import DESKTOP, PHONE
from .conftest import AGENTS, ALICE, BOB, Web
from .test_page import shot, sign_in

GONE = "gone@example.com"
ROWS = f"phone,agent\n+14155550131,\n+14155550132,\n+14155550133,{GONE}\n"


@pytest.fixture
def web(emulator: EmulatorServer, tmp_path: Path) -> Iterator[Web]:
    """The page's service with campaigns in the test's tmp dir, two supervisors' keys, and
    unknowns left for review within a second."""
    config = ServeConfig(
        sse_poll_s=0.2,
        sse_ping_s=5.0,
        campaigns_dir=str(tmp_path / "campaigns"),
        campaign_resolve_timeout_s=1.0,
    )
    running = Web(emulator, tmp_path / "serve.sqlite3", config=config)
    running.start()
    running.supervisor_key = running.make_key(
        "ops-lead", scopes=("watch", "campaigns"), agents=AGENTS, rate_per_minute=100_000
    )
    # Another supervisor, who sees every key's campaigns.
    running.watch_key = running.make_key(
        "ops-night", scopes=("watch", "campaigns", "admin"), rate_per_minute=100_000
    )
    try:
        yield running
    finally:
        running.stop()


def campaign_needing_review(web: Web) -> dict[str, Any]:
    """A campaign run to its pause: two attempts of unknown outcome, one contact pinned to GONE."""
    headers = {"Authorization": f"Bearer {web.supervisor_key}"}
    with httpx.Client(base_url=web.url, headers=headers, timeout=30) as http:
        created = http.post(
            "/v1/campaigns",
            files={"file": ("night.csv", ROWS.encode(), "text/csv")},
            data={"agents": f"{ALICE},{BOB}", "window": "00:00-23:59", "name": "night"},
        )
        assert created.status_code == 201, created.text
        campaign: dict[str, Any] = created.json()
        web.emulator.add_fault(route="create_call", mode="status", status=503, count=2)
        web.emulator.add_fault(route="analytics", mode="status", status=503)
        assert http.post(f"/v1/campaigns/{campaign['id']}/start").status_code == 200
        deadline = time.monotonic() + 30
        while campaign["state"] not in ("paused", "finished", "failed"):
            assert time.monotonic() < deadline, campaign
            time.sleep(0.1)
            campaign = http.get(f"/v1/campaigns/{campaign['id']}").json()
        web.emulator.clear_faults()
        assert campaign["counts"]["needsReview"] == 2, campaign
        review: dict[str, Any] = http.get(f"/v1/campaigns/{campaign['id']}/review").json()
    return review


def journal_of(web: Web, campaign_id: str) -> Journal:
    assert web.store is not None
    journal = CampaignJournals.for_store(web.store).read(campaign_id)
    assert journal is not None
    return journal


def test_verdict_on_a_campaign_attempt_and_reassign_from_the_page(
    web: Web, page: Page, tmp_path: Path
) -> None:
    review = campaign_needing_review(web)
    cid = review["campaign"]["id"]
    first, second = review["unknown"]
    sign_in(page, web)
    item = page.locator(f"#review .review-item[data-attempt='{first['attemptId']}']")
    expect(item).to_contain_text("+14155550131")
    expect(item).to_contain_text("campaign night")
    expect(item).to_contain_text("attempt 1")
    expect(item).to_contain_text("attempt.unknown")
    pinned = page.locator(f"#pinned .pinned[data-agent='{GONE}']")
    expect(pinned).to_contain_text("1 contact(s) pinned to gone@example.com")
    shot(page, tmp_path, "review-campaign")
    # One time format in the panel: the page's clock, never a raw ISO timestamp.
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", page.locator("#review-panel").inner_text())

    # A note written on the second item survives the refresh that the first verdict causes.
    other = page.locator(f"#review .review-item[data-attempt='{second['attemptId']}']")
    other.get_by_role("textbox").fill("seen in Genesys")
    # Keyboard only: the verdict button, its confirm step, Confirm.
    item.get_by_role("button", name="It never rang (not placed)").focus()
    page.keyboard.press("Enter")
    expect(item).to_contain_text("It may be dialed again")
    assert page.evaluate("document.activeElement.textContent") == "Confirm"
    shot(page, tmp_path, "review-confirm")
    page.keyboard.press("Enter")
    expect(page.locator("#notice")).to_contain_text("never rang")
    expect(item).to_have_count(0)
    # Said where the item was, and focused: not only in a notice scrolled out of sight.
    done = page.locator("#review-panel #review-done")
    expect(done).to_be_visible()
    expect(done).to_be_focused()
    expect(done).to_contain_text("never rang (not placed)")
    expect(done).to_contain_text("Line 2 of campaign night is back in the queue")
    other.get_by_role("button", name="It rang (placed)").click()
    other.get_by_role("button", name="Cancel").click()  # changed my mind: nothing recorded
    other.get_by_role("button", name="It rang (placed)").click()
    other.get_by_role("button", name="Confirm").click()
    expect(page.locator("#review")).to_contain_text("Nothing to review")

    pinned.get_by_label("Give them to").select_option(BOB)
    pinned.get_by_role("button", name="Reassign").click()
    expect(page.locator("#notice")).to_contain_text(f"1 contact(s) of {GONE}")
    expect(page.locator("#pinned")).to_contain_text("No contact waits")
    shot(page, tmp_path, "review-done")

    with journal_of(web, cid) as journal:
        contacts = {c.line: c for c in journal.contacts.all()}
        verdicts = [e["detail"] for e in journal.events.all() if e["kind"] == "contact.verdict"]
    assert contacts[2].status.value == "pending"  # not placed: back in the queue
    assert contacts[3].outcome == "placed"
    assert contacts[4].agent == BOB
    assert verdicts == ["not placed by ops-lead: checked in Genesys Cloud",
                        "placed by ops-lead: seen in Genesys"]  # fmt: skip
    assert web.emulator.calls_created() == []  # nothing was re-sent by the review itself


def test_two_sessions_race_on_one_verdict(
    web: Web, page: Page, browser: Browser, tmp_path: Path
) -> None:
    review = campaign_needing_review(web)
    attempt = review["unknown"][0]["attemptId"]
    sign_in(page, web)
    second = browser.new_context(viewport=PHONE)
    try:
        night = second.new_page()
        sign_in(night, web, web.watch_key)
        items = [
            p.locator(f"#review .review-item[data-attempt='{attempt}']") for p in (page, night)
        ]
        items[0].get_by_role("button", name="It rang (placed)").click()
        items[1].get_by_role("button", name="It never rang (not placed)").click()
        # Both confirm at the same moment: two clicks dispatched before either answer is back
        # (a click after the first answer finds the item gone: the page is live).
        confirms = [i.get_by_role("button", name="Confirm").element_handle() for i in items]
        for button in confirms:
            button.evaluate("b => b.click()")
        for p in (page, night):
            expect(p.locator("#notice")).to_contain_text(
                re.compile("Verdict recorded|Not recorded")
            )
        notices = [p.locator("#notice").text_content() or "" for p in (page, night)]
        shot(night, tmp_path, "race-phone")
        shot(page, tmp_path, "race-desktop")
    finally:
        second.close()
    won = [n for n in notices if n.startswith("Verdict recorded")]
    lost = [n for n in notices if n.startswith("Not recorded")]
    assert len(won) == 1, notices
    assert len(lost) == 1, notices
    winner = "ops-lead" if notices[0] in won else "ops-night"
    assert f"by {winner}" in lost[0]
    assert "UTC" in lost[0]
    with journal_of(web, review["campaign"]["id"]) as journal:
        verdicts = [e for e in journal.events.all() if e["kind"] == "contact.verdict"]
    assert len(verdicts) == 1  # exactly one applied


def test_pinned_contacts_hidden_from_a_key_without_the_campaigns_scope(
    web: Web, page: Page, tmp_path: Path
) -> None:
    campaign_needing_review(web)
    wall = web.make_key("wall", scopes=("watch",), agents=AGENTS)
    sign_in(page, web, wall)
    expect(page.locator("#review")).to_contain_text("Nothing to review")
    expect(page.locator("#pinned")).to_contain_text("No contact waits")
    page.set_viewport_size(DESKTOP)
    shot(page, tmp_path, "review-watch-only")
