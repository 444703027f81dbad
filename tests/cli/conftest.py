"""Run ``gcdial`` as a user would: the installed console script, in a subprocess, with a clean
environment (HOME and XDG_CONFIG_HOME in tmp_path, no colour, wide terminal) and, unless told
otherwise, the emulator's credentials in the environment.

Every run is checked for the two things that must never happen: a Python traceback, and a secret
(the client secret, its Basic-auth form, a bearer token) in stdout or stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from gcdial.emulator import EmulatorServer

from .helpers import GCDIAL, Cli, Result, assert_clean, emulator_env, secret_forms


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    """A user's environment with nothing of the developer's: own HOME, no colour, wide terminal."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GCDIAL_CALLING_WINDOW": "00:00-24:00",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "LANG": "C.UTF-8",
    }


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    """The current directory of the runs (where a .env would be read)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return cwd


@pytest.fixture
def run_gcdial(base_env: dict[str, str], work_dir: Path) -> Callable[..., Result]:
    """Run gcdial with exactly ``env`` added to the base environment."""

    def run(
        *args: str,
        env: dict[str, str] | None = None,
        secrets: list[str] | None = None,
        timeout: float = 45,
    ) -> Result:
        proc = subprocess.run(
            [str(GCDIAL), *args],
            env={**base_env, **(env or {})},
            cwd=work_dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        assert_clean(result, secrets or [])
        return result

    return run


@pytest.fixture
def cli(run_gcdial: Callable[..., Result], emulator: EmulatorServer) -> Cli:
    """Run gcdial against the (reset) emulator, credentials in the environment."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 45) -> Result:
        return run_gcdial(
            *args,
            env={**emulator_env(emulator), **(env or {})},
            secrets=secret_forms(emulator),
            timeout=timeout,
        )

    return run


class _HtmlHandler(BaseHTTPRequestHandler):
    def _html(self) -> None:
        body = b"<html><body><h1>Welcome to the hotel Wi-Fi</h1></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _html
    do_POST = _html
    do_PATCH = _html

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on loopback answering with ``handler``; yields its base URL."""
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def html_server() -> Iterator[str]:
    """A real HTTP server on loopback that answers every request with an HTML page."""
    with _serving(_HtmlHandler) as url:
        yield url


class _EchoHandler(BaseHTTPRequestHandler):
    """A misbehaving login host: quotes the credentials it was sent back in its error."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        said = f"bad request; you sent Authorization: {self.headers.get('Authorization')}"
        body = json.dumps({"error": "invalid_request", "error_description": said}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def echo_server() -> Iterator[str]:
    """A real HTTP server on loopback whose token endpoint echoes the Basic credentials back."""
    with _serving(_EchoHandler) as url:
        yield url
