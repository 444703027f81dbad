"""The page against the PostgreSQL store: two ``gcdial serve`` replicas on one database, sharing
``GCDIAL_PAGE_SECRET``. Signed in on replica A, a call placed through replica B shows live on A's
page (the event log is in the shared store; NOTIFY wakes A's stream), and A's session cookie is
good on B."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import httpx
import pytest
from playwright.sync_api import Page, expect

from gcdial.emulator import EmulatorServer
from pgcluster import replica_env

from .conftest import ALICE
from .test_page import shot

GCDIAL = Path(sys.executable).parent / "gcdial"
TALKS = "+14155550120"  # answered, talks 30 s on the emulator's clock


def _drain(process: subprocess.Popen[str], out: TextIO) -> None:
    """Keep reading the replica's output into its log, so it never blocks on a full pipe."""
    assert process.stdout is not None
    with out, process.stdout:
        for line in process.stdout:
            out.write(line)


def _start(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [str(GCDIAL), "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    out = log.open("w")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        out.write(line)
        if found := re.search(r"serving at (http://\S+)", line):
            threading.Thread(target=_drain, args=(process, out), daemon=True).start()
            return process, found.group(1)
    process.kill()
    process.wait()
    out.close()
    raise AssertionError(f"a replica did not start: see {log}")


@pytest.fixture
def replicas(
    emulator: EmulatorServer, pg_url: str, tmp_path: Path
) -> Iterator[tuple[str, str, str]]:
    """Two replicas' URLs and a supervisor key."""
    env = replica_env(emulator, pg_url, tmp_path, GCDIAL_PAGE_SECRET=secrets.token_hex(32))
    made = subprocess.run(
        [str(GCDIAL), "serve", "keys", "create", "--name", "supervisor", "--scopes",
         "watch,dial", "--agents", ALICE, "--rate", "100000/min", "--json"],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = str(json.loads(made.stdout)["key"])
    started = [_start(env, tmp_path / f"replica-{name}.log") for name in "ab"]
    try:
        yield started[0][1], started[1][1], key
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_page_on_one_replica_sees_a_call_placed_through_the_other(
    replicas: tuple[str, str, str], page: Page, emulator: EmulatorServer, tmp_path: Path
) -> None:
    a, b, key = replicas
    emulator.set_speed(4.0)
    page.goto(a + "/")
    page.fill("#key", key)
    page.click("button[type=submit]")
    expect(page.locator("#live")).to_have_text("live")
    answer = httpx.post(
        f"{b}/v1/calls",
        json={"agent": ALICE, "to": TALKS},
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": str(uuid.uuid4())},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    row = page.locator(f"#active tr[data-call='{answer.json()['id']}']")
    expect(row.locator(".step")).to_have_text("talking", timeout=10_000)
    expect(page.locator(f"#agents tr[data-agent='{ALICE}']")).to_contain_text(TALKS)
    shot(page, tmp_path, "replica-a-sees-b")
    # A's session cookie is good on B: the same browser opens B's page signed in.
    cookie = next(c for c in page.context.cookies() if c["name"] == "gcdial_page")
    session = httpx.get(f"{b}/page/session", cookies={"gcdial_page": cookie["value"]})
    assert session.status_code == 200, session.text
    assert session.json()["key"]["name"] == "supervisor"
    page.goto(b + "/")
    expect(page.locator("#key-name")).to_have_text("supervisor")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator(f"#active tr[data-call='{answer.json()['id']}']")).to_be_visible()
    # Signing out on B ends the session in the shared store: a copy of the cookie made before
    # fails on A too.
    page.click("#signout")
    expect(page.locator("#key")).to_be_visible()
    copied = httpx.get(f"{a}/page/session", cookies={"gcdial_page": cookie["value"]})
    assert copied.status_code == 401, copied.text
    assert copied.json()["error"]["type"] == "signed_out"
