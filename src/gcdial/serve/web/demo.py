"""``make demo-serve``: ``gcdial serve --sandbox`` with a demo key and some traffic, in one command.

``make screenshots`` runs it with ``--screenshots docs``: the README's pictures of the page.

Runs the real CLI (``gcdial serve keys create``, then ``gcdial serve --sandbox``) on a fresh store
in a temporary directory, leaves one call "unknown" for the Review panel (a call the service was
placing when it stopped), uploads a small campaign (left for you to start from the page), prints
the page's URL and the demo key, then places a call every few seconds through the API, as a CRM
would, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

AGENTS = ("alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com")
# The sandbox decides by the last two digits: 00-49 answered, 55 no answer, 62 busy, 91 agent
# does not answer (see docs/emulator.md).
NUMBERS = ("+14155550112", "+13175551255", "+14155550104", "+14155550162", "+442079460021")
GCDIAL = str(Path(sys.executable).parent / "gcdial")


def _leave_an_unknown(store_path: Path, key: str) -> None:
    """A call claimed and never answered, as if the service died mid-dial."""
    from gcdial.serve.sqlite_store import SqliteStore
    from gcdial.serve.store import CallRecord, body_fingerprint, hash_api_key

    store = SqliteStore(store_path)
    try:
        record = store.find_api_key(hash_api_key(key))
        assert record is not None
        now = time.time()
        body = {"agent": AGENTS[1], "to": "+14155550133"}
        call_id = "call_" + uuid.uuid4().hex
        store.claim_idempotency(
            record.id, "demo-crash", body_fingerprint(body), call_id, now=now, ttl_s=86_400
        )
        store.insert_call(
            CallRecord(
                id=call_id,
                api_key_id=record.id,
                agent=body["agent"],
                to=body["to"],
                status="placing",
                created_at=now,
                updated_at=now,
                idempotency_key="demo-crash",
                request=json.dumps(body),
            )
        )
    finally:
        store.close()


class _Stopped(Exception):
    """Ctrl-C (SIGINT) or SIGTERM reached the demo: stop the service, clean up, exit 128+N."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop_on_signals() -> None:
    """Turn the first SIGINT or SIGTERM into ``_Stopped``; ignore the ones after it, so the
    clean-up (stopping the service, removing the temporary directory) runs to its end."""

    def stop(signum: int, _frame: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise _Stopped(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _stop_server(server: subprocess.Popen[str]) -> None:
    """Stop ``gcdial serve`` and anything it started: its process group, gracefully, then by
    force; the port is free when this returns. SIGTERM, not SIGINT: uvicorn shuts down as
    gracefully on it, and a process still importing ends without a KeyboardInterrupt trace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def main(argv: list[str] | None = None) -> int:
    """Run the demo until Ctrl-C (exit 130) or SIGTERM (143); returns the exit status."""
    parser = argparse.ArgumentParser(prog="make demo-serve", description=__doc__)
    parser.add_argument("--port", type=int, default=8080, help="port of the page (default 8080)")
    parser.add_argument("--every", type=float, default=6.0, help="seconds between demo calls")
    parser.add_argument("--calls", type=int, default=0, help="stop after this many (0: never)")
    parser.add_argument(
        "--screenshots",
        metavar="DIR",
        type=Path,
        help="take the README's screenshots of the page into DIR (page.png, page-phone.png) with "
        "headless Chromium, then stop (needs the dev extra's playwright and /usr/bin/chromium)",
    )
    args = parser.parse_args(argv)
    _stop_on_signals()
    try:
        return _demo(args)
    except _Stopped as stopped:
        print("demo-serve: stopped.", file=sys.stderr, flush=True)
        return 128 + stopped.signum


def _demo(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="gcdial-demo-") as tmp:
        store = Path(tmp) / "serve.sqlite3"
        env = {**os.environ, "XDG_CONFIG_HOME": str(Path(tmp) / "config"), "NO_COLOR": "1"}
        made = subprocess.run(
            [GCDIAL, "serve", "keys", "create", "--name", "demo",
             "--scopes", "watch,dial,campaigns", "--agents", ",".join(AGENTS),
             "--rate", "600/min", "--store", str(store), "--json"],
            capture_output=True, text=True, env=env, check=False, timeout=60,
        )  # fmt: skip
        if made.returncode != 0:
            sys.stderr.write(made.stderr)
            return made.returncode
        key = json.loads(made.stdout)["key"]
        _leave_an_unknown(store, key)
        # Its own process group: a terminal's Ctrl-C reaches only this wrapper, which stops the
        # service exactly once (a second SIGINT would make uvicorn abort mid-shutdown).
        server = subprocess.Popen(
            [GCDIAL, "serve", "--sandbox", "--store", str(store), "--port", str(args.port)],
            stdout=subprocess.PIPE, text=True, env=env, start_new_session=True,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            if not line.startswith("gcdial serve: serving at"):
                return server.wait(timeout=30) or 1
            url = line.split()[4]
            print(f"\nThe page: {url}/  (sign in with the demo key below; Ctrl-C stops)")
            print(f"Demo key (watch, dial, campaigns): {key}\n", flush=True)
            campaign = _small_campaign(url, key)
            if args.screenshots is not None:
                _traffic(url, key, 0.5, 3)
                return _screenshots(url, key, campaign, args.screenshots)
            _traffic(url, key, args.every, args.calls)
        finally:
            _stop_server(server)
    return 0


def _small_campaign(url: str, key: str) -> str | None:
    """A five-contact campaign (one row refused), created but not started; returns its id."""
    import httpx

    rows = "".join(f"+1415555011{n},Contact {n}\n" for n in range(5))
    answer = httpx.post(
        f"{url}/v1/campaigns",
        files={"file": ("demo-contacts.csv", f"phone,name\n{rows}not-a-number,Bad\n", "text/csv")},
        data={"agents": ",".join(AGENTS[:2]), "window": "00:00-23:59", "name": "demo"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    body = answer.json()
    print(f"demo campaign: {body.get('state', answer.status_code)}", flush=True)
    campaign_id = body.get("id")
    return campaign_id if isinstance(campaign_id, str) else None


def _screenshots(url: str, key: str, campaign: str | None, folder: Path) -> int:
    """Sign in with headless Chromium, start the demo campaign, and shoot the page at 1280x800
    and at a phone's 390x844 (the whole page)."""
    import httpx
    from playwright.sync_api import expect, sync_playwright

    chromium = Path(os.environ.get("GCDIAL_CHROMIUM", "/usr/bin/chromium"))
    if not chromium.exists():
        print(f"{chromium} is missing: run `make browser`", file=sys.stderr)
        return 1
    folder.mkdir(parents=True, exist_ok=True)
    if campaign is not None:
        httpx.post(
            f"{url}/v1/campaigns/{campaign}/start",
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            for name, size in (
                ("page.png", {"width": 1280, "height": 800}),
                ("page-phone.png", {"width": 390, "height": 844}),
            ):
                context = browser.new_context(viewport=size)  # type: ignore[arg-type]
                page = context.new_page()
                page.goto(url + "/")
                page.fill("#key", key)
                page.click("button[type=submit]")
                expect(page.locator("#live")).to_have_text("live", timeout=30_000)
                if campaign is not None:  # a running campaign's card opens by itself
                    page.locator("details.campaign[open] svg").first.wait_for(timeout=30_000)
                page.wait_for_timeout(3000)  # calls and the campaign move on a little
                page.screenshot(path=str(folder / name), full_page=True)
                print(f"screenshot: {folder / name}", flush=True)
                context.close()
        finally:
            browser.close()
    return 0


def _traffic(url: str, key: str, every: float, calls: int) -> None:
    """Place a call every ``every`` seconds through the API, as a CRM would."""
    import httpx

    pairs = zip(itertools.cycle(AGENTS[:2]), itertools.cycle(NUMBERS), strict=False)
    with httpx.Client(base_url=url, timeout=60) as http:
        for count, (agent, number) in enumerate(pairs, start=1):
            answer = http.post(
                "/v1/calls",
                json={"agent": agent, "to": number},
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": str(uuid.uuid4())},
            )
            status = answer.json().get("status", answer.status_code)
            print(f"demo call {count}: {agent} -> {number}: {status}", flush=True)
            if calls and count >= calls:
                return
            time.sleep(every)


if __name__ == "__main__":
    sys.exit(main())
