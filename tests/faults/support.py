"""What the fault tests (and the soak) share: clients on the emulator, and the two invariants.

The invariants: no number is ever rung twice (each attempt in these tests dials its own number,
so a number seen twice in the emulator's ``calls_created`` is a duplicate), and every attempt
ends in exactly one of *placed* (a conversation id that exists), *unknown* (a
``CallOutcomeUnknownError`` saying what was sent and when) or *refused* (a GcdialError raised
while the emulator provably created nothing for it).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from gcdial.client import AsyncClient, Client
from gcdial.config import Settings
from gcdial.emulator import EmulatorServer
from gcdial.errors import CallOutcomeUnknownError, GcdialError

ALICE = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"
CREATE_ROUTE = "POST /api/v2/conversations/calls/user/{userId}"
TOKEN_ROUTE = "POST /oauth/token"

Kind = Literal["placed", "unknown", "refused"]
_serial = itertools.count(1)


def fresh_number(outcome: int = 0) -> str:
    """A number no other attempt in this process dials; its last two digits pick the outcome.

    ``+1 415 555 01NN``-style numbers are valid; the serial goes in the middle digits so the
    emulator's outcome digits stay ``NN``.
    """
    serial = next(_serial) % 100
    return f"+1415555{serial:02d}{outcome:02d}"


def settings_for(emulator: EmulatorServer, **fields: Any) -> Settings:
    """Emulator settings, nothing from the environment; ``fields`` override (e.g. timeout_s)."""
    return Settings.model_validate(
        {
            "api_base_url": emulator.base_url,
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            **fields,
        }
    )


class QuickTime:
    """Retries and rate-limit pauses without waiting: the sleeps are recorded, not slept."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


def sync_client(emulator: EmulatorServer, time: QuickTime, **fields: Any) -> Client:
    return Client(
        settings_for(emulator, **fields),
        clock=time.clock,
        sleep=time.sleep,
        rng=random.Random(1),
    )


def async_client(emulator: EmulatorServer, time: QuickTime, **fields: Any) -> AsyncClient:
    return AsyncClient(
        settings_for(emulator, **fields),
        clock=time.clock,
        sleep=time.async_sleep,
        rng=random.Random(1),
    )


@dataclass
class Attempt:
    """One create-call attempt and how it ended."""

    number: str
    kind: Kind
    conversation_id: str | None = None
    error: GcdialError | None = None
    started: datetime | None = None


def classify(number: str, started: datetime, result: object) -> Attempt:
    if isinstance(result, CallOutcomeUnknownError):
        return Attempt(number, "unknown", error=result, started=started)
    if isinstance(result, GcdialError):
        return Attempt(number, "refused", error=result, started=started)
    conversation_id = getattr(result, "id", None)
    assert isinstance(conversation_id, str)
    return Attempt(number, "placed", conversation_id=conversation_id, started=started)


def create_sync(client: Client, number: str, *, agent: str = ALICE) -> Attempt:
    started = datetime.now(UTC)
    try:
        result: object = client.calls.create(agent, to=number, check_agent=False)
    except GcdialError as exc:
        result = exc
    return classify(number, started, result)


async def create_async(client: AsyncClient, number: str, *, agent: str = ALICE) -> Attempt:
    started = datetime.now(UTC)
    try:
        result: object = await client.calls.create(agent, to=number, check_agent=False)
    except GcdialError as exc:
        result = exc
    return classify(number, started, result)


def created_numbers(emulator: EmulatorServer) -> Counter[str]:
    """How many calls the emulator created per dialed number."""
    return Counter(str(call["phoneNumber"]) for call in emulator.calls_created())


def duplicates(emulator: EmulatorServer) -> dict[str, int]:
    """Numbers rung more than once."""
    return {n: k for n, k in created_numbers(emulator).items() if k > 1}


def check_attempts(emulator: EmulatorServer, attempts: list[Attempt]) -> None:
    """The invariants, for attempts that are all over (nothing still in flight at the server)."""
    assert duplicates(emulator) == {}, "a customer was rung twice"
    created = created_numbers(emulator)
    ids = {str(call["id"]) for call in emulator.calls_created()}
    for attempt in attempts:
        if attempt.kind == "placed":
            assert attempt.conversation_id in ids
            assert created[attempt.number] == 1
        elif attempt.kind == "refused":
            assert created[attempt.number] == 0, f"refused, yet placed: {attempt.error}"
        else:
            check_unknown(attempt)
            assert created[attempt.number] <= 1


def check_unknown(attempt: Attempt) -> None:
    """An unknown outcome says what was sent, where and when, and not to redial blindly."""
    error = attempt.error
    assert isinstance(error, CallOutcomeUnknownError)
    assert error.method == "POST"
    assert error.url.endswith(f"/api/v2/conversations/calls/user/{ALICE}")
    assert error.body == {"phoneNumber": attempt.number}
    assert attempt.started is not None
    assert attempt.started <= error.sent_at <= datetime.now(UTC)
    text = str(error)
    assert "may or may not" in text
    assert attempt.number in repr(error.body)


def route_count(emulator: EmulatorServer, route: str) -> int:
    by_route: dict[str, int] = emulator.request_counts()["byRoute"]
    return int(by_route.get(route, 0))


def wait_for_created(emulator: EmulatorServer, number: str, *, within_s: float = 5.0) -> int:
    """Calls created for ``number`` once a delayed server has had time to act."""
    import time

    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if created_numbers(emulator)[number]:
            break
        time.sleep(0.02)
    return created_numbers(emulator)[number]


def fault_ids(cases: list[tuple[str, Any, Any]]) -> Iterator[str]:
    return (case[0] for case in cases)
