"""The harness itself: Debian's Chromium starts headless and renders a page."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page


def test_chromium_renders_a_page(page: Page, tmp_path: Path) -> None:
    page.set_content("<title>t</title><p id=x>hello</p><script>x.textContent += '!'</script>")
    assert page.text_content("#x") == "hello!"
    page.screenshot(path=str(tmp_path / "harness.png"))
    assert (tmp_path / "harness.png").stat().st_size > 0
