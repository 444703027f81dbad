"""What the CLI tests share: how a run's result looks, and what no run may ever print."""

from __future__ import annotations

import base64
import json
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcdial.emulator import EmulatorServer

GCDIAL = Path(sys.executable).parent / "gcdial"
ALICE = "alice@example.com"
ALICE_ID = "11111111-1111-4111-8111-111111111111"
DAVE = "dave@example.com"
ERIN = "erin@example.com"
ANSWERS = "+14155550100"

_BEARER = re.compile(r"Bearer (?!\*\*\*)[A-Za-z0-9._~+/=\-]{8,}")


@dataclass
class Result:
    """What one ``gcdial`` run printed and how it ended."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout as one JSON document."""
        return json.loads(self.out)

    def json_lines(self) -> list[Any]:
        """stdout as JSON lines."""
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def assert_clean(result: Result, secrets: list[str]) -> None:
    """No traceback, no colour codes, and no secret in any form, in what the user saw."""
    for stream in (result.out, result.err):
        assert "Traceback" not in stream, stream
        assert "\x1b[" not in stream, "colour codes despite NO_COLOR / no terminal"
        for secret in secrets:
            assert secret not in stream, f"secret leaked: {stream}"
        assert not _BEARER.search(stream), stream


Cli = Callable[..., Result]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def emulator_env(emulator: EmulatorServer) -> dict[str, str]:
    """The environment variables a user would set to point gcdial at ``emulator``."""
    return {
        "GENESYSCLOUD_OAUTHCLIENT_ID": emulator.client_id,
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": emulator.client_secret,
        "GCDIAL_BASE_URL": emulator.base_url,
    }


def secret_forms(emulator: EmulatorServer) -> list[str]:
    """The client secret as it could leak: plain, and inside the Basic header."""
    basic = base64.b64encode(f"{emulator.client_id}:{emulator.client_secret}".encode()).decode()
    return [emulator.client_secret, basic]


def placed_id(result: Result) -> str:
    """The conversation id a ``call --wait --json`` run placed (from its "placed" line)."""
    placed = next(line for line in result.json_lines() if line.get("event") == "placed")
    return str(placed["conversationId"])
