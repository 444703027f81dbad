"""The campaign card's outcome bar by disposition, in real headless Chromium: a campaign placed
for a queue shows its calls by the agent's wrap-up code, and the calls whose wrap-up never came."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from gcdial.emulator import EmulatorServer

from .conftest import Web
from .test_campaigns_page import choose, ops_page, the_card
from .test_page import shot

SALES = "9ee00001-0000-4000-8000-000000000001"
# Third digit from the end: 0/1 sale, 4 do not call, 5 the wrap-up never comes.
QUEUE_CSV = "phone,name\n+14155550101,Ann\n+14155550102,Ben\n+14155550410,Cid\n+14155550510,Dee\n"


def test_the_card_shows_calls_by_disposition(
    web: Web, page: Page, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.set_speed(50.0)
    ops_page(web, page)
    page.fill("#campaign-form input[name=window]", "00:00-23:59")
    page.fill("#campaign-form input[name=queueId]", SALES)
    choose(page, QUEUE_CSV.encode())
    expect(page.locator("#campaign-upload")).to_have_text("Upload 4 rows")
    page.locator("#campaign-upload").click()
    card = the_card(page)
    card.get_by_role("button", name="start").click()
    # The wrap-up that never comes is waited for (5 minutes by default) before the run ends:
    # what matters here is the bar while the others are in.
    bar = card.locator(".meter.dispositions")
    expect(bar).to_be_visible(timeout=30_000)
    legend = card.locator(".disposition .legend")
    expect(legend).to_contain_text("Sale 2", timeout=30_000)
    expect(legend).to_contain_text("Do not call 1", timeout=30_000)
    expect(bar.locator(".seg")).to_have_count(2)
    shot(page, tmp_path, "campaign-dispositions")
    assert emulator.calls_created()[0]["queueId"] == SALES
