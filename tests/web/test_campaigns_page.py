"""The page's Campaigns panel in real headless Chromium: preview, upload, cards, downloads.

Each test saves screenshots in its tmp dir; the last one checks the panel's layout at both sizes.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Locator, Page, expect

from gcdial.emulator import EmulatorServer
from gcdial.serve.routes.campaigns import report_filename

from .browser import DESKTOP, PHONE
from .conftest import ALICE, Web
from .test_page import shot, sign_in

CAMPAIGN_CSV = (
    "phone,name\n+14155550101,Ann\n+14155550102,Ben\n+14155550103,Cid\n+14155550104,Dee\n"
    "+14155550105,Eve\nnot-a-number,Bad\n"
)
# Lines 2-4 good; 5 not a number; 6 a duplicate of line 2; 7 a bad time zone.
MIXED_CSV = (
    "phone,name,timezone\n+14155550101,Ann,\n+14155550102,Ben,\n+14155550103,Cid,\n"
    "12,Short,\n+14155550101,Again,\n+14155550106,Far,Mars/Olympus\n"
)


def choose(page: Page, data: bytes, name: str = "contacts.csv") -> None:
    """Choose a file in the upload form (which asks for its preview at once)."""
    page.set_input_files(
        "#campaign-form input[name=file]", {"name": name, "mimeType": "text/csv", "buffer": data}
    )


def ops_page(web: Web, page: Page) -> str:
    """Sign in with a key that may run campaigns (for Alice only); return the key."""
    key = web.make_key("ops", scopes=("watch", "campaigns"), agents=(ALICE,))
    sign_in(page, web, key)
    return key


def the_card(page: Page) -> Locator:
    card = page.locator("#campaigns [data-campaign]")
    expect(card).to_have_count(1)
    return card


def test_preview_upload_run_chart_and_report_download(
    web: Web, page: Page, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.set_speed(20.0)
    key = ops_page(web, page)
    page.fill("#campaign-form input[name=window]", "00:00-23:59")
    choose(page, b"\x89PNG\r\n\x1a\n\x00\x00", "photo.csv")
    expect(page.locator("#campaign-preview")).to_contain_text("The contact list was refused")
    expect(page.locator("#campaign-upload")).to_be_disabled()
    choose(page, b"phone\nnope\n")
    expect(page.locator("#campaign-preview")).to_contain_text("No row of this list can be dialed")
    expect(page.locator("#campaign-upload")).to_be_disabled()
    choose(page, MIXED_CSV.encode())
    expect(page.locator("#preview-counts")).to_contain_text("6 rows: 3 will be dialed, 3 refused")
    refused = page.locator("#preview-refused tbody tr")
    expect(refused).to_have_count(3)
    expect(refused.nth(0)).to_contain_text("invalid phone number")
    expect(refused.nth(0)).to_contain_text("E.164")  # the fix
    expect(refused.nth(1)).to_contain_text("duplicate of line 2")
    expect(refused.nth(2)).to_contain_text("unknown time zone")
    assert [r.get_attribute("data-line") for r in refused.all()] == ["5", "6", "7"]
    preview_text = page.locator("#campaign-preview").inner_text()
    assert "Mars/Olympus" not in preview_text  # the row's values are not repeated
    shot(page, tmp_path, "campaign-preview")
    upload = page.locator("#campaign-upload")
    expect(upload).to_have_text("Upload 3 rows")
    assert emulator.calls_created() == []
    upload.click()
    expect(page.locator("#notice")).to_contain_text("Campaign contacts created")
    card = the_card(page)
    expect(card.locator("summary .step")).to_have_text("created")
    # Before its first run (no journal yet) the card counts what the preview said will be dialed.
    expect(card.locator("summary .settled")).to_have_text("0 / 3")
    expect(card.locator("svg.chart rect")).to_have_count(0)
    card.get_by_role("button", name="start").click()
    expect(card.locator("summary .step")).to_have_text("finished", timeout=30_000)
    expect(card.locator("summary .settled")).to_have_text("3 / 3")
    expect(card.locator(".legend")).to_contain_text("answered 3")
    expect(card.locator(".meter .seg.o-ok")).to_have_count(1)
    bars = card.locator("svg.chart rect")
    expect(bars).not_to_have_count(0)
    drawn = sum(int(b.get_attribute("data-count") or 0) for b in bars.all())
    assert drawn == 3
    expect(card.locator("table.agents")).to_contain_text(ALICE)
    expect(card).to_contain_text("3 rows refused")
    assert len(emulator.calls_created()) == 3
    shot(page, tmp_path, "campaign-finished")
    cid = card.get_attribute("data-campaign")
    with httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {key}"}) as api:
        for fmt, label in (("csv", "Report (CSV)"), ("json", "Report (JSON)")):
            with page.expect_download() as caught:
                card.get_by_role("link", name=label).click()
            download = caught.value
            assert download.suggested_filename == f"contacts-{cid}-report.{fmt}"
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
            same = api.get(f"/v1/campaigns/{cid}/report", params={"format": fmt})
            assert same.status_code == 200
            assert saved.read_bytes() == same.content
            assert b"+14155550101" in same.content


def test_start_pause_resume_updates_the_card(
    web: Web, page: Page, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.set_speed(10.0)
    ops_page(web, page)
    choose(page, CAMPAIGN_CSV.encode())
    page.fill("#campaign-form input[name=window]", "00:00-23:59")
    expect(page.locator("#campaign-upload")).to_have_text("Upload 5 rows")
    page.click("#campaign-upload")
    expect(page.locator("#notice")).to_contain_text("Campaign contacts created")
    card = the_card(page)
    expect(card.locator("summary .step")).to_have_text("created")
    card.get_by_role("button", name="start").click()
    expect(card.locator("summary .step")).to_have_text("running")
    expect(card.locator("summary .settled")).to_have_text(re.compile(r"^[1-4] / 5$"),
                                                          timeout=20_000)  # fmt: skip
    card.get_by_role("button", name="pause").click()
    expect(card.locator("summary .step")).to_have_text("paused", timeout=20_000)
    paused_at = card.locator("summary .settled").text_content()
    shot(page, tmp_path, "campaign-paused")
    card.get_by_role("button", name="resume").click()
    expect(card.locator("summary .step")).to_have_text("finished", timeout=30_000)
    expect(card.locator("summary .settled")).to_have_text("5 / 5")
    assert paused_at != "5 / 5"
    expect(card).to_contain_text("answered 5")
    expect(card).to_contain_text("1 row refused")
    assert len(emulator.calls_created()) == 5  # each contact rang once, pause or not


def test_deferred_retry_shows_its_due_time_and_the_panel_fits_both_sizes(
    web: Web, page: Page, emulator: EmulatorServer, tmp_path: Path
) -> None:
    ops_page(web, page)
    page.fill("#campaign-form input[name=window]", "00:00-23:59")
    page.fill("#campaign-form input[name=retryNoAnswer]", "4m")
    # Line 2 is answered, line 3 is not (the sandbox: 50-59 no answer), so it waits 4 minutes.
    choose(page, b"phone,external_id\n+14155550101,A-1\n+14155550155,B-2\n")
    expect(page.locator("#campaign-upload")).to_have_text("Upload 2 rows")
    page.click("#campaign-upload")
    card = the_card(page)
    card.get_by_role("button", name="start").click()
    deferred = card.locator("table.deferred tbody tr")
    expect(deferred).to_have_count(1, timeout=20_000)
    expect(deferred).to_contain_text("B-2")
    expect(deferred).to_contain_text("no_answer")
    expect(deferred.locator("time.due")).to_have_text(re.compile(r"^\d\d:\d\d \(in [34] min\)$"))
    expect(card.locator("summary .settled")).to_have_text("1 / 2")
    expect(card.locator("table.agents")).to_contain_text(ALICE)
    expect(card.locator(".rate")).to_contain_text("Calls begun in the last minute 2")
    for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        panel = page.locator("#campaigns-panel")
        box = panel.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= size["width"] + 0.5, (name, box)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name}: {overflow}px of horizontal overflow"
        spilled = page.evaluate(
            """() => {
                 const panel = document.querySelector('#campaigns-panel');
                 const edge = panel.getBoundingClientRect().right;
                 return [...panel.querySelectorAll('*')]
                   .filter((e) => e.getBoundingClientRect().right > edge + 0.5)
                   .map((e) => e.tagName + ' ' + e.textContent.slice(0, 40));
               }"""
        )
        assert spilled == [], f"{name}: content spills out of the panel: {spilled}"
        shot(page, tmp_path, f"campaign-{name}")
    # Keyboard: the card's summary and its stop button are reachable with Tab.
    card.locator("summary").focus()
    for _ in range(4):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "stop":
            break
    assert page.evaluate("document.activeElement.textContent") == "stop"
    page.keyboard.press("Enter")
    expect(card.locator("summary .step")).to_have_text("stopped", timeout=20_000)
    assert len(emulator.calls_created()) == 2  # the deferred retry was never dialed


def test_report_filename_keeps_only_safe_characters() -> None:
    assert report_filename("Spring promo", "cmp_1a", "csv") == "Spring_promo-cmp_1a-report.csv"
    assert report_filename('../"x"\r\n', "cmp_1a", "json") == "x-cmp_1a-report.json"
    assert report_filename("...", "cmp_1a", "csv") == "campaign-cmp_1a-report.csv"
