"""Fixtures of the page's browser tests: the service against the emulator, and a browser page.

``web`` runs ``gcdial serve`` (SQLite store in the test's tmp dir) against the session emulator,
with a supervisor key (watch, dial) and a watch-only key; ``restart()`` stops the service and starts
it again on the same port and store. ``browser`` is one Chromium per module; ``page`` is a
fresh context (no cookies) per test, 1280x800.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from gcdial.client import AsyncClient
from gcdial.emulator import EmulatorServer
from gcdial.serve.app import create_app
from gcdial.serve.config import ServeConfig
from gcdial.serve.keys import new_api_key
from gcdial.serve.server import ServeServer
from gcdial.serve.sqlite_store import SqliteStore

from .browser import CHROMIUM_ARGS, DESKTOP, require_chromium

ALICE = "alice@example.com"
BOB = "bob@example.com"
AGENTS = (ALICE, BOB, "carol@example.com", "dave@example.com")


@dataclass
class Web:
    """The service under test and its keys; ``url`` is its base URL."""

    emulator: EmulatorServer
    path: Path
    supervisor_key: str = ""
    watch_key: str = ""
    server: ServeServer | None = None
    store: SqliteStore | None = None
    port: int = 0
    keys: dict[str, str] = field(default_factory=dict)
    config: ServeConfig = field(default_factory=lambda: ServeConfig(sse_poll_s=0.2, sse_ping_s=5.0))
    clock: Callable[[], float] = time.time  # the service's clock (a test may move it)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    def start(self) -> None:
        """Start the service (again) on the same store file and, after the first time, port."""
        self.store = SqliteStore(self.path)
        emulator = self.emulator
        app = create_app(
            self.store,
            lambda: AsyncClient(
                base_url=emulator.base_url,
                client_id=emulator.client_id,
                client_secret=emulator.client_secret,
            ),
            # Campaigns of this test only, never the user's default folder.
            replace(
                self.config,
                campaigns_dir=self.config.campaigns_dir or str(self.path.parent / "campaigns"),
            ),
            clock=self.clock,
            single_process=True,
        )
        self.server = ServeServer(app, port=self.port).start()
        self.port = int(self.server.base_url.rsplit(":", 1)[1])

    def stop(self) -> None:
        """Stop the service and close its store."""
        if self.server is not None:
            self.server.stop()
        if self.store is not None:
            self.store.close()
        self.server = None
        self.store = None

    def restart(self) -> None:
        """Stop, then start on the same port and store (sessions and events survive)."""
        self.stop()
        self.start()

    def make_key(self, name: str, **fields: Any) -> str:
        """A new API key stored in the service's store."""
        assert self.store is not None
        made = new_api_key(name, now=time.time(), **fields)
        self.store.add_api_key(made.record)
        self.keys[name] = made.record.id
        return made.key

    def dial(self, to: str, idem: str, agent: str = ALICE) -> dict[str, Any]:
        """POST /v1/calls with the supervisor key, as a CRM would."""
        answer = httpx.post(
            f"{self.url}/v1/calls",
            json={"agent": agent, "to": to},
            headers={
                "Authorization": f"Bearer {self.supervisor_key}",
                "Idempotency-Key": idem,
            },
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        body: dict[str, Any] = answer.json()
        return body


@pytest.fixture
def web(emulator: EmulatorServer, tmp_path: Path) -> Iterator[Web]:
    """The service with a supervisor key (watch, dial; agents of the fixture) and a watch key."""
    # Its own campaign folder: the default one is in the user's config dir, shared by every run.
    config = ServeConfig(sse_poll_s=0.2, sse_ping_s=5.0, campaigns_dir=str(tmp_path / "campaigns"))
    running = Web(emulator, tmp_path / "serve.sqlite3", config=config)
    running.start()
    running.supervisor_key = running.make_key(
        "supervisor", scopes=("watch", "dial"), agents=AGENTS, rate_per_minute=100_000
    )
    running.watch_key = running.make_key("wallboard", scopes=("watch",), agents=AGENTS)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def playwright_session() -> Iterator[Playwright]:
    """Playwright's driver, once per module (its event loop never outlives the browser tests)."""
    require_chromium()
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless, with a fresh profile (Playwright makes a temporary one)."""
    chromium = playwright_session.chromium.launch(
        executable_path=str(require_chromium()), headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def page(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    """A new browser context (no cookies) and page at 1280x800; console errors fail the test."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
