"""The supervisors' page in real headless Chromium against ``gcdial serve`` and the emulator.

Each test saves a screenshot in its tmp dir (``shot``); the layout test checks both sizes.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from gcdial.emulator import EmulatorServer
from gcdial.serve.store import CallRecord, DncEntry, body_fingerprint

from .browser import DESKTOP, PHONE
from .conftest import ALICE, Web

ANSWERED = "+14155550105"  # the sandbox answers numbers ending 00-49 (talks 10+NN s)


def shot(page: Page, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot under the test's tmp dir."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    return path


def sign_in(page: Page, web: Web, key: str | None = None) -> None:
    """Open the page and sign in with ``key`` (the supervisor key by default)."""
    page.goto(web.url + "/")
    page.fill("#key", key or web.supervisor_key)
    page.click("button[type=submit]")
    expect(page.locator("#live")).to_have_text("live")


def test_sign_in_wrong_key_session_cookie_and_revocation(
    web: Web, page: Page, tmp_path: Path
) -> None:
    page.goto(web.url + "/")
    page.fill("#key", "gcd_not-a-key")
    page.click("button[type=submit]")
    expect(page.locator("#signin-error")).to_contain_text("not known or was revoked")
    sign_in(page, web, web.watch_key)
    expect(page.locator("#key-name")).to_have_text("wallboard")
    expect(page.locator("#dial-panel")).to_contain_text("no dial scope")
    cookie = next(c for c in page.context.cookies() if c["name"] == "gcdial_page")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert web.watch_key not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # HttpOnly: invisible to scripts
    # An action without the CSRF token is refused, even with the session cookie.
    refused = page.evaluate(
        """async () => (await fetch('/v1/calls', {method: 'POST',
            headers: {'Content-Type': 'application/json', 'Idempotency-Key': 'x'},
            body: JSON.stringify({agent: 'alice@example.com', to: '+14155550100'})})).status"""
    )
    assert refused == 403
    assert web.store is not None
    assert web.store.revoke_api_key("wallboard", now=0.0)
    # The live stream notices within its ping; a reload shows the message at once.
    page.reload()
    expect(page.locator("#signin-error")).to_contain_text("revoked")
    shot(page, tmp_path, "signin-revoked")


def test_a_call_placed_through_the_api_moves_live(
    web: Web, page: Page, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.set_speed(4.0)
    sign_in(page, web)
    page.evaluate(
        """() => {
          window.seenSteps = [];
          window.notReloaded = true;
          new MutationObserver(() => {
            for (const s of document.querySelectorAll('#active .step')) {
              if (window.seenSteps.at(-1) !== s.textContent) window.seenSteps.push(s.textContent);
            }
          }).observe(document.querySelector('#active'), {childList: true, subtree: true});
        }"""
    )
    call = web.dial(ANSWERED, str(uuid.uuid4()))
    row = page.locator(f"#active tr[data-call='{call['id']}']")
    expect(row).to_be_visible()
    expect(page.locator(f"#agents tr[data-agent='{ALICE}']")).to_contain_text(ANSWERED)
    expect(row.locator(".step")).to_have_text("talking")
    shot(page, tmp_path, "call-talking")
    expect(row).to_have_count(0, timeout=20_000)
    recent = page.locator(f"#recent tr[data-call='{call['id']}']")
    expect(recent).to_contain_text("answered")
    expect(recent).to_contain_text("supervisor")
    expect(recent).to_contain_text(re.compile(r"0:1\d"))  # talks 15 s on the emulator's clock
    steps = page.evaluate("window.seenSteps")
    assert "talking" in steps
    assert steps.index("talking") > 0, steps  # it got there through earlier steps, live
    assert page.evaluate("window.notReloaded") is True
    shot(page, tmp_path, "call-answered")
    # Filters: by outcome, then by agent.
    page.select_option("#filters select[name=outcome]", "busy")
    expect(recent).to_have_count(0)
    expect(page.locator("#recent")).to_contain_text("No calls match")
    page.select_option("#filters select[name=outcome]", "answered")
    expect(recent).to_be_visible()
    page.fill("#filters input[name=agent]", "bob@example.com")
    page.keyboard.press("Enter")
    expect(recent).to_have_count(0)


def test_hang_up_from_the_calls_panel(
    web: Web, page: Page, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.set_speed(4.0)
    sign_in(page, web)
    call = web.dial("+14155550149", str(uuid.uuid4()))  # would talk 59 s
    row = page.locator(f"#active tr[data-call='{call['id']}']")
    expect(row.locator(".step")).to_have_text("talking")
    row.get_by_role("button", name="Hang up").click()
    expect(page.locator("#notice")).to_contain_text("Hang-up sent")
    expect(row).to_have_count(0)
    recent = page.locator(f"#recent tr[data-call='{call['id']}']")
    expect(recent).to_contain_text("answered")
    expect(recent).to_contain_text(re.compile(r"0:0\d"))  # ended early, not after 59 s
    assert web.store is not None
    hangups = [(e.action, e.result) for e in web.store.list_audit() if e.action == "hangup"]
    assert hangups == [("hangup", "ok")]
    shot(page, tmp_path, "hung-up")


def test_place_a_call_from_the_form(web: Web, page: Page, emulator: EmulatorServer,
                                    tmp_path: Path) -> None:  # fmt: skip
    sign_in(page, web)
    page.fill("#dial-agent", ALICE)
    page.fill("#dial-to", "(415) 555-0102")
    expect(page.locator("#preview-e164")).to_have_text("+14155550102")
    expect(page.locator("#preview")).to_contain_text("United States")
    expect(page.locator("#preview")).to_contain_text("America/Los_Angeles")
    page.fill("#dial-to", "555-01")
    expect(page.locator("#preview")).to_contain_text("Not dialable")
    page.fill("#dial-to", "(415) 555-0102")
    expect(page.locator("#preview-e164")).to_have_text("+14155550102")
    shot(page, tmp_path, "dial-preview")
    page.keyboard.press("Enter")  # the form works from the keyboard
    progress = page.locator("#dial-progress")
    expect(progress).to_contain_text("placed")
    expect(progress).to_contain_text("over: answered", timeout=20_000)
    created = emulator.calls_created()
    assert len(created) == 1
    shot(page, tmp_path, "dial-done")


def test_a_failed_call_shows_what_the_code_means_not_the_code(
    web: Web, page: Page, emulator: EmulatorServer
) -> None:
    """Supervisors read "the line was busy", not Genesys' error.ininedgecontrol.remote.busy (the
    code stays in the call's events, for the details)."""
    sign_in(page, web)
    page.fill("#dial-agent", ALICE)
    page.fill("#dial-to", "+14155550165")  # the sandbox: 60-69 busy
    expect(page.locator("#preview-e164")).to_have_text("+14155550165")
    page.keyboard.press("Enter")
    progress = page.locator("#dial-progress")
    expect(progress).to_contain_text("over: busy", timeout=20_000)
    expect(progress).to_contain_text("the line was busy")
    assert "ininedgecontrol" not in progress.inner_text()
    assert "ininedgecontrol" not in page.locator("body").inner_text()


def crash_mid_dial(web: Web, to: str) -> str:
    """A call the service was placing when it died (claimed, never answered), then a restart.

    The row keeps no attempt (as rows written before attempts were kept), so the ladder has
    nothing to look for: the restarted service marks it unknown (it may or may not have rung),
    saying so, and never re-sends it.
    """
    assert web.store is not None
    call_id = "call_" + uuid.uuid4().hex
    now = time.time()
    key_id = web.keys["supervisor"]
    body = {"agent": ALICE, "to": to}
    claim = web.store.claim_idempotency(
        key_id, "crm-1", body_fingerprint(body), call_id, now=now, ttl_s=86_400, owner="dead"
    )
    assert claim.kind == "claimed"
    web.store.insert_call(
        CallRecord(
            id=call_id, api_key_id=key_id, agent=ALICE, to=to, status="placing",
            created_at=now, updated_at=now, idempotency_key="crm-1", request=json.dumps(body),
        )
    )  # fmt: skip
    web.restart()
    return call_id


def test_record_a_verdict_for_an_unknown(
    web: Web, page: Page, emulator: EmulatorServer, tmp_path: Path
) -> None:
    call = {"id": crash_mid_dial(web, "+14155550103")}
    sign_in(page, web)
    item = page.locator(f"#review .review-item[data-call='{call['id']}']")
    expect(item).to_contain_text("+14155550103")
    expect(item).to_contain_text("call.unknown")
    expect(item).to_contain_text("stopped while placing")
    shot(page, tmp_path, "review")
    item.get_by_role("textbox").fill("seen in Genesys")
    item.get_by_role("button", name="It rang (placed)").click()
    expect(item).to_contain_text("It will not be dialed again")  # the confirm step
    item.get_by_role("button", name="Confirm").click()
    expect(page.locator("#review")).to_contain_text("Nothing to review")
    expect(page.locator("#notice")).to_contain_text("did ring")
    expect(page.locator(f"#recent tr[data-call='{call['id']}']")).to_contain_text("unknown")
    # A second supervisor acting on the same call a moment later changes nothing.
    with httpx.Client(base_url=web.url) as other:
        other.post("/page/signin", data={"key": web.supervisor_key})
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', other.get("/").text)
        assert csrf is not None
        late = other.post(
            f"/v1/calls/{call['id']}/verdict",
            json={"verdict": "not_placed"},
            headers={"X-CSRF-Token": csrf.group(1)},
        )
    assert late.status_code == 409, late.text
    assert late.json()["error"]["type"] == "already_resolved"
    assert web.store is not None
    stored = web.store.get_call(call["id"])
    assert stored is not None
    assert stored.status == "placed"
    verdicts = [e for e in web.store.list_audit() if e.action == "verdict"]
    assert [(e.result, e.detail) for e in verdicts] == [("placed", "seen in Genesys")]
    assert emulator.calls_created() == []  # nothing was re-sent


def test_reconnect_after_the_service_restarts(
    web: Web, page: Page, emulator: EmulatorServer, tmp_path: Path
) -> None:
    sign_in(page, web)
    web.stop()
    expect(page.locator("#live")).to_have_text("reconnecting…")
    expect(page.locator("#notice")).to_contain_text("Lost the connection")
    shot(page, tmp_path, "service-down")
    web.start()
    expect(page.locator("#live")).to_have_text("live", timeout=20_000)
    expect(page.locator("#notice")).to_contain_text("Reconnected")
    # Still signed in (the session survives the restart) and live without a reload.
    call = web.dial(ANSWERED, str(uuid.uuid4()))
    expect(page.locator(f"#recent tr[data-call='{call['id']}']")).to_contain_text(
        "answered", timeout=20_000
    )
    shot(page, tmp_path, "reconnected")


def test_layout_at_desktop_and_phone_sizes(web: Web, page: Page, tmp_path: Path) -> None:
    sign_in(page, web)
    call = web.dial(ANSWERED, str(uuid.uuid4()))
    expect(page.locator(f"#recent tr[data-call='{call['id']}']")).to_contain_text("answered")
    for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        for panel in ("#agents-panel", "#dial-panel", "#calls-panel", "#review-panel"):
            expect(page.locator(panel)).to_be_visible()
            box = page.locator(panel).bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= size["width"] + 0.5, (name, panel, box)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name}: {overflow}px of horizontal overflow"
        spilled = page.evaluate(
            """() => [...document.querySelectorAll('.panel')].flatMap((panel) => {
                 const edge = panel.getBoundingClientRect().right;
                 return [...panel.querySelectorAll('*')]
                   .filter((e) => e.getBoundingClientRect().right > edge + 0.5)
                   .map((e) => e.textContent.slice(0, 40));
               })"""
        )
        assert spilled == [], f"{name}: content spills out of its panel: {spilled}"
        shot(page, tmp_path, f"layout-{name}")
    # Keyboard: Tab reaches the dial form's fields and the Call button.
    page.focus("#dial-agent")
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "dial-button":
            break
    assert page.evaluate("document.activeElement.id") == "dial-button"


def test_a_number_on_the_do_not_call_list_is_refused_from_the_form(
    web: Web, page: Page, emulator: EmulatorServer
) -> None:
    assert web.store is not None
    web.store.add_dnc([DncEntry("+14155550103", time.time(), "cli:test", "asked by phone")])
    sign_in(page, web)
    page.fill("#dial-agent", ALICE)
    page.fill("#dial-to", "(415) 555-0103")
    expect(page.locator("#preview-e164")).to_have_text("+14155550103")
    page.click("#dial-button")
    notice = page.locator("#notice")
    expect(notice).to_contain_text("on the do-not-call list (asked by phone)")
    expect(notice).to_contain_text("The contact's local time:")
    expect(notice).to_contain_text("America/Los_Angeles")
    assert emulator.calls_created() == []
