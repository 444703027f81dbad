"""``gcdial emulator serve``, run as a user would."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

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
        assert "sandbox-secret" not in text
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


def test_port_in_use(tmp_path: Path) -> None:
    import socket

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
