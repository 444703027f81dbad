"""``gcdial serve`` and ``gcdial serve keys``, run as a user would."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from gcdial.emulator import EmulatorServer
from gcdial.serve.sqlite_store import SqliteStore
from gcdial.serve.store import hash_api_key

GCDIAL = str(Path(sys.executable).parent / "gcdial")


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "GCDIAL_SERVE_STORE": str(tmp_path / "store.sqlite3"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "GCDIAL_SANDBOX_SPEED": "50",
    }


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GCDIAL, "serve", *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=60,
        check=False,
    )


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    made = _run(tmp_path, "keys", "create", "--name", "crm", "--agents", "alice@example.com",
                "--scopes", "dial,watch", "--rate", "2/s")  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("gcd_")
    assert "shown only this once" in made.stderr
    store = SqliteStore(tmp_path / "store.sqlite3")
    try:
        record = store.find_api_key(hash_api_key(key))
        assert record is not None
        assert (record.agents, record.scopes, record.rate_per_minute) == (
            ("alice@example.com",), ("dial", "watch"), 120,
        )  # fmt: skip
    finally:
        store.close()
    assert key not in (tmp_path / "store.sqlite3").read_bytes().decode("latin-1")
    listed = _run(tmp_path, "keys", "list")
    assert "crm" in listed.stdout
    assert key not in listed.stdout
    assert "active" in listed.stdout
    assert _run(tmp_path, "keys", "create", "--name", "crm").returncode == 2
    assert _run(tmp_path, "keys", "revoke", "crm").returncode == 0
    assert "revoked" in _run(tmp_path, "keys", "list").stdout
    missing = _run(tmp_path, "keys", "revoke", "crm")
    assert missing.returncode == 2
    assert "no active key" in missing.stderr


def test_keys_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    for args, words in [
        (("--name", "crm", "--scopes", "dial,fly"), "unknown scope 'fly'"),
        (("--name", "crm", "--rate", "lots"), "rate 'lots' is not understood"),
        (("--name", "no spaces"), "not valid"),
        (("--name", "board", "--watch-queue", " "), "is not a queue name or id"),
    ]:
        result = _run(tmp_path, "keys", "create", *args)
        assert result.returncode == 2
        assert words in result.stderr
        assert "Traceback" not in result.stderr


def test_a_key_made_to_watch_a_queue_keeps_it(tmp_path: Path) -> None:
    made = _run(tmp_path, "keys", "create", "--name", "board", "--scopes", "watch",
                "--watch-queue", " Support ")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "watches queue Support" in made.stderr
    listed = json.loads(_run(tmp_path, "keys", "list", "--json").stdout)
    assert [(k["name"], k["watchQueue"]) for k in listed] == [("board", "Support")]
    assert "watch-queue=Support" in _run(tmp_path, "keys", "list").stdout


def test_remote_host_needs_allow_remote(tmp_path: Path) -> None:
    result = _run(tmp_path, "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert "--allow-remote" in result.stderr


def test_serve_sandbox_dials_with_a_key(tmp_path: Path) -> None:
    key = _run(tmp_path, "keys", "create", "--name", "crm").stdout.strip()
    process = subprocess.Popen(
        [GCDIAL, "serve", "--sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("gcdial serve: serving at"), line
        base_url = line.split()[4]
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "cli-1"}
        body = {"agent": "alice@example.com", "to": "+14155550100"}
        with httpx.Client(base_url=base_url, timeout=30) as http:
            first = http.post("/v1/calls", json=body, headers=headers)
            assert first.status_code == 202, first.text
            assert first.json()["status"] == "placed"
            again = http.post("/v1/calls", json=body, headers=headers)
            assert again.headers["idempotent-replayed"] == "true"
            assert http.get("/readyz").json() == {"status": "ready"}
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    assert "Traceback" not in stderr
    assert key not in stderr
    # Ctrl-C is how the service stops: said plainly, not as an error, with the shell's 130.
    assert "error" not in stderr.lower(), stderr
    assert "gcdial serve: stopped." in stderr
    assert process.returncode == 130


def _serve(
    tmp_path: Path, emulator: EmulatorServer, **extra: str
) -> tuple[subprocess.Popen[str], str]:
    env = {
        **_env(tmp_path),
        "GCDIAL_BASE_URL": emulator.base_url,
        "GENESYSCLOUD_OAUTHCLIENT_ID": emulator.client_id,
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": emulator.client_secret,
        **extra,
    }
    process = subprocess.Popen(
        [GCDIAL, "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("gcdial serve: serving at"), line + (
        process.stderr.read() if process.stderr else ""
    )
    return process, line.split()[4]


def test_killed_mid_dial_the_call_is_settled_by_evidence_and_never_redialed(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    key = _run(tmp_path, "keys", "create", "--name", "crm").stdout.strip()
    emulator.add_fault(route="create_call", mode="hang_after_create", seconds=60, count=1)
    process, base_url = _serve(tmp_path, emulator)
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "kill-1"}
    body = {"agent": "alice@example.com", "to": "+14155550100"}

    def post() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{base_url}/v1/calls", json=body, headers=headers, timeout=30)

    pending = threading.Thread(target=post)
    pending.start()
    try:
        deadline = time.monotonic() + 20
        while not emulator.calls_created():
            assert time.monotonic() < deadline, "the create-call never reached the emulator"
            time.sleep(0.05)
        process.kill()  # -9, mid-dial: the create-call left, its answer never came back
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)
        pending.join(timeout=30)
    # The restarted service runs the resolution ladder on it: the key is in progress (409)
    # until the evidence (the attempt id in the conversation details) says it was placed.
    process, base_url = _serve(tmp_path, emulator, GCDIAL_ANALYTICS_SETTLE_S="2")
    try:
        deadline = time.monotonic() + 30
        retry = httpx.post(f"{base_url}/v1/calls", json=body, headers=headers, timeout=30)
        while retry.status_code == 409 and time.monotonic() < deadline:
            assert retry.json()["error"]["type"] == "idempotency_key_in_progress", retry.text
            time.sleep(0.2)
            retry = httpx.post(f"{base_url}/v1/calls", json=body, headers=headers, timeout=30)
        assert retry.status_code == 202, retry.text
        assert retry.headers["idempotent-replayed"] == "true"
        call = retry.json()
        assert call["status"] == "placed", call
        assert call["conversationId"] == emulator.calls_created()[0]["id"]
        assert "resolved after its replica stopped" in call["detail"]
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
    assert len(emulator.calls_created()) == 1


def test_keys_create_refuses_a_rules_policy_that_does_not_exist(tmp_path: Path) -> None:
    bad = _run(tmp_path, "keys", "create", "--name", "desk", "--rules", "lenient")
    assert bad.returncode == 2, bad.stderr
    assert "rules policy 'lenient' does not exist" in bad.stderr
    assert "enforce or warn" in bad.stderr
    assert "Traceback" not in bad.stderr
    made = _run(tmp_path, "keys", "create", "--name", "desk", "--rules", "warn")
    assert made.returncode == 0, made.stderr
    listed = json.loads(_run(tmp_path, "keys", "list", "--json").stdout)
    assert [(k["name"], k["rules"]) for k in listed] == [("desk", "warn")]


def test_dnc_import_is_all_or_none_and_names_each_bad_row(tmp_path: Path) -> None:
    bad = tmp_path / "dnc.csv"
    bad.write_text(
        "phone,reason\n+14155550100,asked\nnot a number,x\n(415) 555-0101,\n12,\n",
        encoding="utf-8",
    )
    refused = _run(tmp_path, "dnc", "import", str(bad))
    assert refused.returncode == 2, refused.stderr
    assert "2 bad row(s); nothing was imported" in refused.stderr
    assert f"{bad}:3: column 'phone': not a phone number" in refused.stderr
    assert f"{bad}:5: column 'phone': not a phone number" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert json.loads(_run(tmp_path, "dnc", "list", "--json").stdout) == []

    bad.write_text("phone,reason\n+14155550100,asked\n(415) 555-0101,\n", encoding="utf-8")
    done = _run(tmp_path, "dnc", "import", str(bad))
    assert done.returncode == 0, done.stderr
    assert "2 number(s) added, 0 already on the list" in done.stdout
    added = _run(tmp_path, "dnc", "add", "020 7946 0142", "--country", "GB", "--reason", "web")
    assert added.returncode == 0, added.stderr
    assert "Added +442079460142." in added.stdout
    listed = json.loads(_run(tmp_path, "dnc", "list", "--json").stdout)
    assert {(e["number"], e["reason"]) for e in listed} == {
        ("+14155550100", "asked"), ("+14155550101", None), ("+442079460142", "web"),
    }  # fmt: skip
    assert all(e["addedBy"].startswith("cli:") for e in listed)
    removed = _run(tmp_path, "dnc", "remove", "+14155550100")
    assert removed.returncode == 0, removed.stderr
    again = _run(tmp_path, "dnc", "remove", "+14155550100")
    assert again.returncode == 2
    assert "is not on the do-not-call list" in again.stderr
    store = SqliteStore(tmp_path / "store.sqlite3")
    try:
        lines = [(a.action, a.result, a.number) for a in store.list_audit()]
    finally:
        store.close()
    assert lines == [
        ("dnc_import", "imported", None),
        ("dnc_add", "added", "+442079460142"),
        ("dnc_remove", "removed", "+14155550100"),
    ]


def test_campaigns_an_older_gcdial_kept_in_a_folder_are_refused_naming_it(tmp_path: Path) -> None:
    old = tmp_path / "serve-campaigns" / "cmp_0123456789abcdef"
    old.mkdir(parents=True)
    (old / "meta.json").write_text('{"id": "cmp_0123456789abcdef", "state": "paused"}')
    (old / "contacts.csv").write_text("phone\n+14155550100\n")
    result = subprocess.run(
        [GCDIAL, "serve", "--sandbox", "--port", "0"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{tmp_path / 'serve-campaigns'} holds 1 campaign(s) of an older gcdial" in (
        result.stderr
    )
    assert "cmp_0123456789abcdef" in result.stderr
    assert "move" in result.stderr  # what to do about it
    # An empty folder (or none) is no campaign: the service starts.
    (old / "meta.json").unlink()
    (old / "contacts.csv").unlink()
    old.rmdir()
    process = subprocess.Popen(
        [GCDIAL, "serve", "--sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("gcdial serve: serving at"), line
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
