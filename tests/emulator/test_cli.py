"""``gcdial emulator serve``, run as a user would."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from .helpers import ALICE

GCDIAL = str(Path(sys.executable).parent / "gcdial")
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}


def _start(*args: str) -> subprocess.Popen[str]:
    """``gcdial emulator serve ARGS`` in the background, its output piped."""
    return subprocess.Popen(
        [GCDIAL, "emulator", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def _stop(process: subprocess.Popen[str]) -> str:
    """Ctrl-C the server and return what it wrote on stderr."""
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=15)
    return stderr


def _refused(*args: str) -> subprocess.CompletedProcess[str]:
    """``gcdial emulator serve ARGS`` expected to give up at once."""
    return subprocess.run(
        [GCDIAL, "emulator", "serve", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
        check=False,
    )


def test_serve_prints_how_to_connect_and_serves() -> None:
    process = _start("--port", "0", "--speed", "20", "--admin")
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("gcdial emulator: serving at http://127.0.0.1:")
        base_url = first.split()[4]
        lines = [process.stdout.readline() for _ in range(6)]
        text = first + "".join(lines)
        assert "sandbox-client" in text
        assert f"GCDIAL_BASE_URL={base_url}" in text
        assert "export GENESYSCLOUD_OAUTHCLIENT_SECRET=sandbox-secret\n" in text
        assert "public sandbox credentials, not secrets" in text
        assert "sandbox-no-analytics / sandbox-no-analytics-secret" in text
        with httpx.Client(base_url=base_url) as http:
            token = http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=("sandbox-client", "sandbox-secret"),
            )
            assert token.status_code == 200
            assert http.get("/_emulator/clock").json()["speed"] == 20
    finally:
        stderr = _stop(process)
    assert process.returncode in (0, 130), stderr  # 130: interrupted, like any command
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "--allow-remote"),
        (["--speed", "0"], "--speed"),
        (["--rate-limit", "0"], "--rate-limit"),
        (["--token-lifetime", "-1"], "--token-lifetime"),
        (["--port", "70000"], "--port"),
        (["--fixture", "/nonexistent/org.json"], "fixture file /nonexistent/org.json"),
    ],
)
def test_bad_flags_exit_2_with_a_clear_message(args: list[str], message: str) -> None:
    out = _refused(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_a_secret_from_the_users_own_fixture_is_never_printed(tmp_path: Path) -> None:
    fixture = tmp_path / "org.json"
    fixture.write_text(
        json.dumps(
            {
                "clients": [
                    {"id": "acme", "secret": "hunter2-acme-private", "grant": "client_credentials"}
                ]
            }
        )
    )
    process = _start("--port", "0", "--fixture", str(fixture))
    try:
        assert process.stdout is not None
        text = "".join(process.stdout.readline() for _ in range(6))
    finally:
        stderr = _stop(process)
    assert "export GENESYSCLOUD_OAUTHCLIENT_ID=acme" in text
    assert "export GENESYSCLOUD_OAUTHCLIENT_SECRET=...\n" in text
    assert "hunter2-acme-private" not in text + stderr
    assert "public" not in text


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _refused("--port", str(port))
    assert out.returncode == 2
    assert "cannot listen" in out.stderr


def test_remote_host_warns(tmp_path: Path) -> None:
    process = _start("--host", "0.0.0.0", "--allow-remote", "--port", "0")
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("gcdial emulator: serving at http://0.0.0.0:")
    finally:
        stderr = _stop(process)
    assert "WARNING" in stderr


def _base_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline().split()[4]


def _leave_mid_body(base_url: str, path: str, token: str) -> None:
    """Send headers and a piece of a JSON body, then hang up without reading anything."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as raw:
        raw.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            '{"phoneNum'.encode()
        )
        time.sleep(0.1)


def test_clients_that_leave_are_not_errors() -> None:
    process = _start("--port", "0", "--speed", "50", "--admin")
    try:
        base_url = _base_url(process)
        with httpx.Client(base_url=base_url) as http:
            token = http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=("sandbox-client", "sandbox-secret"),
            ).json()["access_token"]
            for path in (
                f"/api/v2/conversations/calls/user/{ALICE}",
                "/api/v2/analytics/conversations/details/query",
                "/api/v2/users/search",
                "/oauth/token",
            ):
                _leave_mid_body(base_url, path, token)
            auth = {"Authorization": f"Bearer {token}"}
            create = f"/api/v2/conversations/calls/user/{ALICE}"
            for mode in ("drop_after_create", "drop_without_create", "hang_after_create"):
                fault = {"route": "create_call", "mode": mode, "count": 1}
                if mode.startswith("hang"):
                    fault["seconds"] = 30
                assert http.post("/_emulator/faults", json=fault).status_code == 201
                with pytest.raises(httpx.TransportError):
                    http.post(
                        create, json={"phoneNumber": "+14155550100"}, headers=auth, timeout=0.3
                    )
            channel = http.post("/api/v2/notifications/channels", headers=auth).json()
            ws = connect(channel["connectUri"])
            ws.socket.close()  # gone without a closing handshake
            time.sleep(0.3)
            counts = http.get("/_emulator/requests").json()
            fired = http.get("/_emulator/ledger").json()["fired"]
        assert counts["internalErrors"] == 0
        assert counts["clientDisconnects"] >= 3
        assert len(fired) == 3
    finally:
        stderr = _stop(process)
    assert "Traceback" not in stderr
    assert "ERROR" not in stderr, stderr
