"""``make demo-serve`` works for a newcomer: a page URL, a demo key, calls placed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def test_demo_serve_prints_the_page_and_a_key_and_places_calls(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gcdial.serve.web.demo", "--port", "0", "--every", "0.2",
         "--calls", "2"],
        capture_output=True, text=True, timeout=50, check=False,
        env={**os.environ, "GCDIAL_SANDBOX_SPEED": "50", "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "The page: http://127.0.0.1:" in result.stdout
    assert "Demo key (watch, dial, campaigns): gcd_" in result.stdout
    assert "demo campaign: created" in result.stdout
    assert "demo call 2:" in result.stdout
    assert result.stdout.count(": placed") == 2, result.stdout
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("gcdial-demo-*")), "the demo leaves nothing behind"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _demo_until_a_call(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    """The demo as a user starts it from a terminal (its own process group), once it has
    placed its first call."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "gcdial.serve.web.demo", "--port", str(port), "--every", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "GCDIAL_SANDBOX_SPEED": "50", "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert demo.stdout is not None
    seen = ""
    while "demo call 1:" not in seen:
        line = demo.stdout.readline()
        assert line, f"the demo ended early: {seen}"
        seen += line
    return demo


@pytest.mark.parametrize(
    ("how", "status"),
    [("ctrl-c", 130), ("sigterm", 128 + signal.SIGTERM)],
)
def test_demo_serve_stops_quietly_and_frees_its_port(tmp_path: Path, how: str, status: int) -> None:
    """Ctrl-C reaches the terminal's process group; SIGTERM (kill, a supervisor) reaches only
    the wrapper. Either way the wrapper stops its `gcdial serve`, removes its temporary
    directory and exits 128+N, with no traceback, and the next run can have the port."""
    port = _free_port()
    demo = _demo_until_a_call(tmp_path, port)
    if how == "ctrl-c":
        os.killpg(demo.pid, signal.SIGINT)
    else:
        demo.send_signal(signal.SIGTERM)
    _, stderr = demo.communicate(timeout=40)
    assert demo.returncode == status, stderr
    assert "Traceback" not in stderr
    assert "CancelledError" not in stderr
    assert "KeyboardInterrupt" not in stderr
    assert not list(tmp_path.glob("gcdial-demo-*")), "the temporary directory is removed"
    assert _port_is_free(port), "gcdial serve still holds the port"
