"""Headless Chromium for the page's tests: Playwright driving Debian's /usr/bin/chromium.

Playwright's own browser download is never used. Without the browser the tests are skipped on a
developer's machine (say how to install it) and fail on CI (``CI=true``), where `make test`
installs it first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import ViewportSize

CHROMIUM = Path(os.environ.get("GCDIAL_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}


def require_chromium() -> Path:
    """The browser's path; a failure on CI when it is missing, a skip elsewhere."""
    if CHROMIUM.exists():
        return CHROMIUM
    message = f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)
