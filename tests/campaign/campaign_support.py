"""Shared pieces of the campaign tests: an org with a few agents, lists, and call accounting."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gcdial.emulator import EmulatorServer

DOMAIN = "camp.example.com"
DAVE = "dave@example.com"  # exists, active, no station
ERIN = "erin@example.com"  # inactive
SPEED = 400.0


def agent(n: int) -> str:
    """The email of generated agent ``n`` (1-based)."""
    return f"agent{n:03d}@{DOMAIN}"


def write_fixture(path: Path, *, agents: int) -> Path:
    """An org with ``agents`` generated agents (stations), dave (no station), erin (inactive)."""
    path.write_text(
        json.dumps(
            {
                "clients": [
                    {"id": "camp-client", "secret": "camp-secret", "grant": "client_credentials"}
                ],
                "users": [
                    {
                        "id": "44444444-4444-4444-8444-444444444444",
                        "name": "Dave Diaz",
                        "email": DAVE,
                        "station": None,
                    },
                    {
                        "id": "55555555-5555-4555-8555-555555555555",
                        "name": "Erin Evans",
                        "email": ERIN,
                        "state": "inactive",
                        "station": {"id": "e5", "name": "erin-webrtc"},
                    },
                ],
                "generate_agents": {"count": agents, "email_domain": DOMAIN},
            }
        )
    )
    return path


def number(area: str, last: int, exchange: int = 1) -> str:
    """A valid US number in ``area`` whose last two digits are ``last`` (its emulated outcome)."""
    return f"+1{area}555{exchange:02d}{last:02d}"


def write_csv(path: Path, rows: Iterable[dict[str, str]], columns: list[str]) -> Path:
    """A contact list with a header."""
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join(row.get(c, "") for c in columns))
    path.write_text("\n".join(lines) + "\n")
    return path


def calls_per_number(emulator: EmulatorServer) -> Counter[str]:
    """How many calls the emulator created for each number."""
    return Counter(call["phoneNumber"] for call in emulator.calls_created())


def create_requests(emulator: EmulatorServer) -> int:
    """Create-call POSTs that reached the emulator (any answer)."""
    by_route: dict[str, int] = emulator.request_counts()["byRoute"]
    return sum(
        n for route, n in by_route.items() if route.startswith("POST /api/v2/conversations/calls")
    )


def allowed_calls(phone: str, *, max_attempts: int, agent_retries: int = 3) -> int:
    """How many calls a number may get under the emulator's outcome rule."""
    last = int(phone[-2:])
    if 50 <= last <= 69:
        return max_attempts
    if last >= 90:
        return 1 + agent_retries
    return 1


class FakeClock:
    """Rule time that only moves when the runner sleeps (or the test moves it)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=max(seconds, 0.0))
        await asyncio.sleep(0)


def events_of(kind: str, events: list[Any]) -> list[Any]:
    """The observer events of one kind."""
    return [e for e in events if e.kind == kind]
