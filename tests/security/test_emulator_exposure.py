"""``gcdial emulator serve``: loopback by default, other hosts only when asked, admin API off."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .support import GCDIAL, run_cli

SERVING = re.compile(r"serving at (http://\S+)")


def listening_addresses(port: int) -> set[str]:
    """The local addresses a TCP socket on ``port`` listens on, from /proc/net/tcp{,6}."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


@pytest.fixture
def serve(user_env: dict[str, str], work: Path) -> Iterator[object]:
    """Start ``gcdial emulator serve ARGS`` on a free port; yields a function returning its URL."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> str:
        proc = subprocess.Popen(
            [str(GCDIAL), "emulator", "serve", "--port", "0", *args],
            env={**user_env, "PYTHONUNBUFFERED": "1"},
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        for line in proc.stdout:
            match = SERVING.search(line)
            if match:
                return match.group(1)
        raise AssertionError(
            f"the emulator did not start: {proc.stderr.read() if proc.stderr else ''}"
        )

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGINT)  # Ctrl-C, as a user stops it
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_serves_on_loopback_only_by_default(serve: object) -> None:
    url = serve()  # type: ignore[operator]
    assert url.startswith("http://127.0.0.1:")
    port = int(url.rsplit(":", 1)[1])
    # The URL is printed once the socket listens, so it answers right away.
    assert httpx.post(url + "/oauth/token", timeout=5).status_code in {400, 401}
    if os.path.exists("/proc/net/tcp"):
        assert listening_addresses(port) == {"0100007F"}, "listens beyond 127.0.0.1"


def test_admin_api_is_not_reachable_without_the_flag(serve: object) -> None:
    url = serve()  # type: ignore[operator]
    for method, path in (
        ("GET", "/_emulator/calls"),
        ("GET", "/_emulator/requests"),
        ("POST", "/_emulator/reset"),
        ("POST", "/_emulator/faults"),
        ("POST", "/_emulator/tokens/revoke"),
    ):
        answer = httpx.request(method, url + path, json={}, timeout=5)
        assert answer.status_code == 404, f"{method} {path}: {answer.status_code}"


def test_admin_api_answers_with_the_flag(serve: object) -> None:
    url = serve("--admin")  # type: ignore[operator]
    answer = httpx.get(url + "/_emulator/calls", timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"calls": []}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com"])
def test_another_host_needs_its_explicit_flag(
    user_env: dict[str, str], work: Path, host: str
) -> None:
    run = run_cli(
        "emulator", "serve", "--host", host, "--port", "0", env=user_env, cwd=work, timeout=20
    )
    assert run.code == 2
    assert "--allow-remote" in run.err
    assert "Traceback" not in run.err
