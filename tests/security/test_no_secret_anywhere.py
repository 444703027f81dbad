"""Every command, in every mode, with a known secret: it shows up nowhere a user could see it.

Each run's stdout and stderr, every file it left under HOME and the working directory (SQLite
files table by table) and the help texts are scanned for the client secret, its Basic-auth form,
every access token the emulator issued, and any unredacted ``Bearer`` value.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from gcdial.emulator import EmulatorServer

from .support import (
    BASIC,
    CLIENT_ID,
    GCDIAL,
    SANDBOX_SECRET,
    SECRET,
    Run,
    file_texts,
    issued_tokens,
    leaks,
    run_cli,
)

ALICE = "alice@example.com"
ALICE_ID = "11111111-1111-4111-8111-111111111111"
ANSWERS = "+14155550100"
CALL = "{call}"
# Runs that never get an HTTP answer, so -v has no exchange to log.
SENDS_NOTHING = {"wrong-region", "bad-number", "call-dry-run-v", "closed-port"}
# Runs that ask this emulator for no token (help, dry runs, a refused secret, own sandboxes).
GETS_NO_TOKEN = {
    "help",
    "call-help",
    "call-dry-json",
    "wrong-secret",
    "sandbox",
    "demo",
}  # replaced by the id of a call placed before the run

# (id, arguments, a fault in force during the run or None, extra environment)
CASES: list[tuple[str, list[str], dict[str, object] | None, dict[str, str]]] = [
    ("help", ["--help"], None, {}),
    ("call-help", ["call", "--help"], None, {}),
    ("doctor", ["doctor", "--agent", ALICE], None, {}),
    ("doctor-v-json", ["-v", "--json", "doctor", "--agent", "dave@example.com"], None, {}),
    ("call", ["call", ANSWERS, "--agent", ALICE], None, {}),
    ("call-v-json", ["-v", "call", ANSWERS, "--agent", ALICE_ID, "--json"], None, {}),
    ("call-dry-run-v", ["-v", "call", ANSWERS, "--agent", ALICE, "--dry-run"], None, {}),
    ("call-dry-json", ["call", ANSWERS, "--agent", ALICE, "--dry-run", "--json"], None, {}),
    ("call-wait-v", ["-v", "call", "+14155550103", "--agent", ALICE, "--wait", "--json"], None, {}),
    ("status-v", ["-v", "status", CALL], None, {}),
    ("status-json", ["status", CALL, "--json"], None, {}),
    ("watch-v", ["-v", "watch", CALL, "--timeout", "20"], None, {}),
    ("hangup-v", ["-v", "hangup", CALL, "--json"], None, {}),
    ("agent-show-v", ["-v", "agent", "show", ALICE], None, {}),
    ("agent-find-json", ["--json", "-v", "agent", "find", "Alice"], None, {}),
    ("bad-number", ["-v", "call", "555", "--agent", ALICE], None, {}),
    ("unknown-agent", ["-v", "call", ANSWERS, "--agent", "nobody@example.com"], None, {}),
    ("wrong-region", ["-v", "--region", "eu-west-9", "call", ANSWERS, "--agent", ALICE], None, {}),
    ("closed-port", ["-v", "call", ANSWERS, "--agent", ALICE], None, {"GCDIAL_BASE_URL": "closed"}),
    ("wrong-secret", ["-v", "doctor"], None, {"GENESYSCLOUD_OAUTHCLIENT_SECRET": "not-it"}),
    (
        "outcome-unknown",
        ["-v", "call", ANSWERS, "--agent", ALICE, "--json"],
        {"route": "create_call", "mode": "drop_after_create", "count": 1},
        # At speed 50 the call can be over before the ladder's channel is subscribed; then the
        # conversation details settle it (ingestion 90 simulated s: 1.8 s), not the default 120 s.
        {"GCDIAL_ANALYTICS_SETTLE_S": "4"},
    ),
    (
        "server-error",
        ["-v", "call", ANSWERS, "--agent", ALICE],
        {"route": "create_call", "mode": "status", "status": 503, "count": 1},
        # The lost answer is resolved: the details query and its verdict are in the scan too.
        {"GCDIAL_ANALYTICS_SETTLE_S": "1"},
    ),
    (
        "revoked-mid-run",
        ["-v", "status", CALL],
        {"route": "get_call", "mode": "status", "status": 401, "code": "bad.credentials"},
        {},
    ),
    ("sandbox", ["-v", "--sandbox", "agent", "show", ALICE], None, {}),
    ("demo", ["--json", "-v", "demo"], None, {"GCDIAL_SANDBOX_SPEED": "50"}),
]


def closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def place_call(emulator: EmulatorServer) -> str:
    with httpx.Client(base_url=emulator.base_url, timeout=10) as http:
        token = http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, SECRET)
        ).json()["access_token"]
        created = http.post(
            f"/api/v2/conversations/calls/user/{ALICE_ID}",
            json={"phoneNumber": "+14155550149"},
            headers={"Authorization": f"Bearer {token}"},
        )
    conversation_id: str = created.json()["id"]
    return conversation_id


def assert_nothing_shown(run: Run, emulator: EmulatorServer, dirs: list[Path]) -> None:
    secrets = [SECRET, BASIC, SANDBOX_SECRET, *issued_tokens(emulator)]
    for stream, text in (("stdout", run.out), ("stderr", run.err)):
        assert not leaks(text, secrets), f"{run.args}: {stream} shows {leaks(text, secrets)}"
        assert "Traceback" not in text, f"{run.args}: {stream}:\n{text}"
    for path, text in file_texts(dirs).items():
        assert not leaks(text, secrets), f"{run.args}: {path} holds {leaks(text, secrets)}"


@pytest.mark.parametrize(("case", "args", "fault", "extra"), CASES, ids=[c[0] for c in CASES])
def test_no_secret_or_token_in_anything_a_command_leaves(
    sec_emulator: EmulatorServer,
    creds_env: dict[str, str],
    home: Path,
    work: Path,
    case: str,
    args: list[str],
    fault: dict[str, object] | None,
    extra: dict[str, str],
) -> None:
    sec_emulator.reset()
    call_id = place_call(sec_emulator) if CALL in args else ""
    env = {**creds_env, **extra}
    if env.get("GCDIAL_BASE_URL") == "closed":
        env["GCDIAL_BASE_URL"] = closed_port_url()
    if fault is not None:
        sec_emulator.add_fault(**fault)
    run = run_cli(*[a.replace(CALL, call_id) for a in args], env=env, cwd=work)
    sec_emulator.clear_faults()
    assert_nothing_shown(run, sec_emulator, [home, work])
    # The runs did what they say, so the scan looked at real output (not an early crash).
    assert run.code != 1, f"{case}: internal error\n{run.err}"
    if case not in SENDS_NOTHING | GETS_NO_TOKEN:
        assert issued_tokens(sec_emulator), f"{case}: no token was issued, so none was looked for"
    if "-v" in args and case not in SENDS_NOTHING:
        assert "DEBUG " in run.err or "INFO httpx" in run.err, f"{case}: -v logged nothing"


def test_login_token_is_private_and_never_printed(
    sec_emulator: EmulatorServer, user_env: dict[str, str], home: Path, work: Path
) -> None:
    sec_emulator.reset()
    env = {
        **user_env,
        "GCDIAL_BASE_URL": sec_emulator.base_url,
        "GCDIAL_LOGIN_CLIENT_ID": "sec-pkce",
    }
    proc = subprocess.Popen(
        [str(GCDIAL), "-v", "login", "--no-browser", "--timeout", "20"],
        env=env,
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("http"):
            httpx.get(line.strip(), follow_redirects=True, timeout=10)
            break
    out, err = proc.communicate(timeout=20)
    run = Run(("login",), proc.returncode, out, "".join(seen) + err)
    assert run.code == 0, run.err
    token_dir = home / ".config" / "gcdial" / "tokens"
    token_file = token_dir / "default.json"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert token_dir.stat().st_mode & 0o777 == 0o700
    secrets = [*issued_tokens(sec_emulator)]
    assert secrets, "the login got a token"
    assert not leaks(run.out + run.err, secrets)
    others = {p: t for p, t in file_texts([home, work]).items() if p != token_file}
    for path, text in others.items():
        assert not leaks(text, secrets), f"{path} holds a token"
    # Dialing with the stored token shows it nowhere either.
    dial = run_cli("-v", "call", ANSWERS, "--agent", "me", "--json", env=env, cwd=work)
    assert dial.code == 0, dial.err
    assert not leaks(dial.out + dial.err, issued_tokens(sec_emulator))
