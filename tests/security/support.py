"""What the security checks share: a distinctive secret, an emulator that knows it, a scanner."""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from gcdial.emulator import EmulatorServer

GCDIAL = Path(sys.executable).parent / "gcdial"
CLIENT_ID = "sec-client-3e9d"
SECRET = "S3cr3t-Sentinel-Quokka-9d41e7b2"
BASIC = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
SANDBOX_SECRET = "sandbox-secret"  # the built-in fixture's, used by --sandbox and demo
BEARER = re.compile(r"Bearer (?!\*\*\*)[A-Za-z0-9._~+/=\-]{8,}")


def write_fixture(path: Path) -> Path:
    """The built-in fixture's agents with an OAuth client whose secret is :data:`SECRET`."""
    text = resources.files("gcdial.emulator").joinpath("default_fixture.json").read_text()
    data = json.loads(text)
    data["clients"] = [
        {"id": CLIENT_ID, "secret": SECRET, "grant": "client_credentials"},
        {"id": "sec-pkce", "grant": "authorization_code", "user": "alice"},
    ]
    path.write_text(json.dumps(data))
    return path


def issued_tokens(emulator: EmulatorServer) -> list[str]:
    """Every access token the emulator has issued since its last reset."""
    return list(emulator.state.tokens)


@dataclass
class Run:
    """One CLI run: its command line, exit code and what it printed."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str


def run_cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 45) -> Run:
    """Run the installed ``gcdial`` as a user would."""
    proc = subprocess.run(
        [str(GCDIAL), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(tuple(args), proc.returncode, proc.stdout, proc.stderr)


def sqlite_text(path: Path) -> str:
    """Every value of every table of a SQLite file, as text."""
    parts: list[str] = []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - names from the file
                parts += [
                    v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row
                ]
    return "\n".join(parts)


def file_texts(roots: Iterable[Path], *, skip: Iterable[Path] = ()) -> dict[Path, str]:
    """The text of every file under ``roots`` (SQLite files table by table), except ``skip``."""
    skipped = {p.resolve() for p in skip}
    found: dict[Path, str] = {}
    for root in roots:
        for dirpath, _, names in os.walk(root):
            for name in names:
                path = Path(dirpath) / name
                if path.resolve() in skipped:
                    continue
                raw = path.read_bytes()
                text = raw.decode("utf-8", "replace")
                if raw.startswith(b"SQLite format 3"):
                    text += sqlite_text(path)
                found[path] = text
    return found


def leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """What of ``secrets`` (and any unredacted bearer token) appears in ``text``."""
    shown = [s for s in secrets if s and s in text]
    shown += BEARER.findall(text)
    return shown
