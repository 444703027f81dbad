"""The click-to-dial widget in headless Chromium, on a sample CRM page served from another origin
(another port of 127.0.0.1): sign in as alice in the emulator's form (a pop-up), the call placed
and its outcome shown in place, a double click that is one call, a disallowed origin refused; no
console error (CSP violations are console errors) on the CRM page nor in the pop-up (issue 19).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Route, expect

from gcdial.emulator import EmulatorServer
from gcdial.serve.config import ServeConfig

from .browser import DESKTOP
from .conftest import Web

TEST_SPEED = 50.0  # tests/conftest.py's emulator speed
WIDGET_S = 600.0  # how long a widget token may place calls
ALICE_ID = "11111111-1111-4111-8111-111111111111"
# The host page's styles are hostile on purpose: the widget's shadow root keeps them out.
CRM_CSS = b"button { background: rgb(255, 0, 0) !important; font-size: 40px; }\n"


def _crm_page(service: str) -> bytes:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ticket 4711 - CRM</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/crm.css"></head>
<body><h1>Ticket 4711</h1>
<p>Customer: <a id="customer" href="tel:+14155550123">+1 415 555 0123</a></p>
<p>Office: <span id="office" data-gcdial-dial="+14155550124">+1 415 555 0124</span></p>
<p>Typo: <span id="typo" data-gcdial-dial="555 01">555 01</span></p>
<button id="host-button">The CRM's own button</button>
<script src="{service}/widget.js" data-gcdial="country=US"></script>
</body></html>""".encode()


@dataclass
class Crm:
    """The sample CRM's server; ``url`` is its allowed origin, ``other`` the same server under
    another origin (localhost) that the service does not allow."""

    server: ThreadingHTTPServer
    service: str = ""

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def other(self) -> str:
        return f"http://localhost:{self.port}"


@pytest.fixture
def crm() -> Iterator[Crm]:
    """The CRM page server, with a strict CSP that lets only the service's script and API in."""
    holder = Crm(ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/crm.css":
                body, kind = CRM_CSS, "text/css"
            else:
                body, kind = _crm_page(holder.service), "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header(
                "Content-Security-Policy",
                f"default-src 'none'; script-src {holder.service}; connect-src {holder.service};"
                " style-src 'self'; img-src data:; frame-ancestors 'none'",
            )
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    holder.server.server_close()
    holder.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=holder.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder
    finally:
        holder.server.shutdown()
        holder.server.server_close()


@pytest.fixture
def shift() -> list[float]:
    """How far the service's clock is ahead of the real one, in seconds (a test moves it)."""
    return [0.0]


@pytest.fixture
def client_id() -> str:
    """The service's sign-in client (a test names an unknown one by parametrizing this)."""
    return "sandbox-signin"


@pytest.fixture
def widget_web(
    emulator: EmulatorServer, tmp_path: Path, crm: Crm, shift: list[float], client_id: str
) -> Iterator[Web]:
    """The service with agent sign-in, allowing the CRM's 127.0.0.1 origin only, on a clock
    ``shift`` moves."""
    config = ServeConfig(
        sse_poll_s=0.2,
        campaigns_dir=str(tmp_path / "campaigns"),
        signin_client_id=client_id,
        widget_origins=(crm.url,),
        widget_session_s=WIDGET_S,
    )
    running = Web(
        emulator,
        tmp_path / "serve.sqlite3",
        config=config,
        clock=lambda: time.time() + shift[0],
    )
    running.start()
    crm.service = running.url
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[tuple[BrowserContext, list[str]]]:
    """A fresh context whose every page (the pop-up too) reports console errors."""
    made = browser.new_context(viewport=DESKTOP)
    made.set_default_timeout(15_000)
    errors: list[str] = []

    def watch(page: Page) -> None:
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                errors.append(f"{page.url}: {message.text}")

        page.on("console", on_console)

    made.on("page", watch)
    try:
        yield made, errors
    finally:
        made.close()


def _status(page: Page, host: str) -> str:
    return str(page.locator(f"{host} + [data-gcdial-widget] .status").inner_text())


def test_click_sign_in_call_outcome_and_double_click(
    context: tuple[BrowserContext, list[str]], crm: Crm, widget_web: Web, emulator: EmulatorServer
) -> None:
    browser_context, errors = context
    page = browser_context.new_page()
    posts: list[str] = []
    page.on(
        "request",
        lambda r: posts.append(r.url) if r.method == "POST" and "/v1/calls" in r.url else None,
    )
    emulator.set_speed(8)  # slow enough for the polls to see the call talking
    page.goto(crm.url + "/")
    customer = page.locator("#customer + [data-gcdial-widget] button")
    expect(customer).to_have_text("Call")
    expect(customer).to_have_attribute("aria-label", "Call +14155550123")
    # The host page's red, 40px buttons stop at the shadow root.
    assert customer.evaluate("b => getComputedStyle(b).backgroundColor") != "rgb(255, 0, 0)"

    with page.expect_popup() as abandoned:
        customer.click()
    abandoned.value.close()  # the agent gives up: the button says so, nothing is dialed
    expect(page.locator("#customer + [data-gcdial-widget] .status")).to_have_text(
        "The sign-in window was closed before you signed in."
    )
    with page.expect_popup() as opened:
        page.locator("#customer").click()  # the tel: link itself
    popup = opened.value
    popup.wait_for_load_state()
    assert popup.url.startswith(emulator.base_url + "/oauth/authorize")
    popup.locator("#user-alice").check()
    with popup.expect_event("close"):
        popup.locator("#allow").click()

    status = page.locator("#customer + [data-gcdial-widget] .status")
    expect(status).to_have_text("Talking", timeout=20_000)
    expect(status).to_contain_text("Ended: answered (the customer answered", timeout=30_000)
    emulator.set_speed(TEST_SPEED)  # the rest need no time to watch
    assert len(posts) == 1  # the abandoned sign-in placed nothing
    [first] = emulator.calls_created()
    assert first["userId"] == ALICE_ID

    office = page.locator("#office + [data-gcdial-widget] button")
    office.dblclick()  # signed in already: no pop-up; and one call, not two
    expect(page.locator("#office + [data-gcdial-widget] .status")).to_contain_text(
        "Ended: answered", timeout=30_000
    )
    assert len(posts) == 2
    assert len(emulator.calls_created()) == 2
    # Keyboard: Tab to the button, Enter calls. Its first request is lost on the way (before
    # the service saw it): the widget sends it again with the same Idempotency-Key.
    keys: list[str | None] = []
    lost: list[str] = []

    def lose_once(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key"))
        if route.request.method == "POST" and not lost:
            lost.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/v1/calls", lose_once)
    page.locator("#customer").focus()
    page.keyboard.press("Tab")  # from the tel: link to its Call button, inside the shadow root
    focused = page.evaluate(
        "() => { const a = document.activeElement; const s = a && a.shadowRoot;"
        " return [a && a.hasAttribute('data-gcdial-widget'), s && s.activeElement"
        " && s.activeElement.getAttribute('aria-label')]; }"
    )
    assert focused == [True, "Call +14155550123"]
    page.keyboard.press("Enter")
    expect(page.locator("#customer + [data-gcdial-widget] .status")).to_contain_text(
        "Ended: answered", timeout=30_000
    )
    assert len(posts) == 4  # the lost one and its retry
    assert len(emulator.calls_created()) == 3
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert keys[0]
    assert lost
    page.unroute("**/v1/calls")
    errors[:] = [e for e in errors if "ERR_FAILED" not in e]  # Chromium logs the lost one
    assert len(browser_context.pages) == 1  # the pop-up closed itself
    assert errors == []
    # A number the service refuses: its reason shows in place. (Chromium logs the 422 answer
    # itself as a console error: that one, and nothing else, is expected.)
    page.locator("#typo + [data-gcdial-widget] button").click()
    typo = page.locator("#typo + [data-gcdial-widget] .status")
    expect(typo).to_have_class("status error")
    expect(typo).to_contain_text("555 01")
    assert len(emulator.calls_created()) == 3
    assert [e for e in errors if "status of 422" not in e] == []


def _sign_in_as_alice(page: Page, button: str) -> None:
    with page.expect_popup() as opened:
        page.locator(button).click()
    popup = opened.value
    popup.wait_for_load_state()
    popup.locator("#user-alice").check()
    with popup.expect_event("close"):
        popup.locator("#allow").click()


def test_a_sign_in_that_expires_mid_call_keeps_the_outcome_and_asks_again_for_the_next(
    context: tuple[BrowserContext, list[str]],
    crm: Crm,
    widget_web: Web,
    emulator: EmulatorServer,
    shift: list[float],
) -> None:
    browser_context, errors = context
    page = browser_context.new_page()
    posts: list[str] = []
    page.on(
        "request",
        lambda r: posts.append(r.url) if r.method == "POST" and "/v1/calls" in r.url else None,
    )
    emulator.set_speed(8)  # slow enough to expire the sign-in while the call goes on
    page.goto(crm.url + "/")
    _sign_in_as_alice(page, "#customer + [data-gcdial-widget] button")
    status = page.locator("#customer + [data-gcdial-widget] .status")
    expect(status).to_have_text("Talking", timeout=20_000)
    shift[0] += WIDGET_S + 1  # the service's clock: the token may now only read
    # The browser's clock did not move: the widget learns it from the service's answers.
    expect(status).to_contain_text("Ended: answered (the customer answered", timeout=30_000)
    expect(status).to_contain_text("Sign in again for the next call.")
    expect(status).not_to_have_class("status error")
    emulator.set_speed(TEST_SPEED)
    assert len(posts) == 1
    # The next call asks for the sign-in first (a pop-up in the click), not after a refused POST.
    _sign_in_as_alice(page, "#office + [data-gcdial-widget] button")
    office = page.locator("#office + [data-gcdial-widget] .status")
    expect(office).to_contain_text("Ended: answered", timeout=30_000)
    expect(office).not_to_contain_text("Sign in again")
    assert len(posts) == 2
    assert [c["userId"] for c in emulator.calls_created()] == [ALICE_ID, ALICE_ID]
    assert errors == []  # a refused (401) request would be a console error


@pytest.mark.parametrize(
    ("user", "decision", "why"),
    [
        ("alice", "#deny", "Genesys Cloud refused the sign-in: The user denied"),
        ("erin", "#allow", "erin@example.com is inactive"),
    ],
)
def test_a_sign_in_genesys_refuses_says_why_in_the_pop_up_and_on_the_button(
    context: tuple[BrowserContext, list[str]],
    crm: Crm,
    widget_web: Web,
    emulator: EmulatorServer,
    user: str,
    decision: str,
    why: str,
) -> None:
    browser_context, errors = context
    page = browser_context.new_page()
    page.goto(crm.url + "/")
    with page.expect_popup() as opened:
        page.locator("#customer + [data-gcdial-widget] button").click()
    popup = opened.value
    popup.wait_for_load_state()
    popup.locator(f"#user-{user}").check()
    popup.locator(decision).click()
    expect(popup.locator("#signin-error")).to_contain_text(why)
    status = page.locator("#customer + [data-gcdial-widget] .status")
    expect(status).to_contain_text(why)
    expect(status).to_have_class("status error")
    assert not popup.is_closed()  # it stays open to say why
    assert emulator.calls_created() == []
    # Chromium logs the refusal page's own 403 status; nothing else may be logged.
    assert [e for e in errors if "status of 403" not in e] == []


@pytest.mark.parametrize("client_id", ["no-such-client"])
def test_a_client_genesys_does_not_know_is_refused_in_the_pop_up(
    context: tuple[BrowserContext, list[str]], crm: Crm, widget_web: Web, emulator: EmulatorServer
) -> None:
    browser_context, errors = context
    page = browser_context.new_page()
    page.goto(crm.url + "/")
    with page.expect_popup() as opened:
        page.locator("#customer + [data-gcdial-widget] button").click()
    popup = opened.value
    # The login host never sends a browser back to a client it does not know: it says so.
    expect(popup.locator("#error")).to_contain_text("invalid_client")
    expect(popup.locator("#error")).to_contain_text("unknown authorization_code client_id")
    popup.close()
    expect(page.locator("#customer + [data-gcdial-widget] .status")).to_have_text(
        "The sign-in window was closed before you signed in."
    )
    assert emulator.calls_created() == []
    assert [e for e in errors if "status of 400" not in e] == []


def test_a_disallowed_origin_is_refused(
    context: tuple[BrowserContext, list[str]], crm: Crm, widget_web: Web, emulator: EmulatorServer
) -> None:
    browser_context, errors = context
    page = browser_context.new_page()
    page.goto(crm.other + "/")
    button = page.locator("#customer + [data-gcdial-widget] button")
    expect(button).to_have_text("Call")
    page.wait_for_load_state("networkidle")
    button.click()
    expect(page.locator("#customer + [data-gcdial-widget] .status")).to_contain_text(
        f"gcdial does not allow click-to-dial on {crm.other}"
    )
    assert len(browser_context.pages) == 1  # no pop-up, no session
    assert emulator.calls_created() == []
    assert errors == []


def test_the_page_signs_an_agent_in_with_genesys(
    context: tuple[BrowserContext, list[str]], widget_web: Web
) -> None:
    browser_context, errors = context
    page = browser_context.new_page()
    page.goto(widget_web.url + "/")
    page.locator("#signin-genesys").click()
    page.locator("#user-alice").check()
    page.locator("#allow").click()
    expect(page.locator("#key-name")).to_have_text("Alice Anders")
    expect(page.locator(".who")).to_contain_text("agent: alice@example.com")
    agents = page.locator("#agents tr")
    expect(agents).to_have_count(1)
    expect(agents).to_contain_text("alice@example.com")
    assert errors == []
