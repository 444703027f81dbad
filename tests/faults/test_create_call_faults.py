"""Create-call under every emulator fault, sync and async: never twice, unknown said clearly.

Each case puts faults in force, makes one attempt (or a run of attempts) with a fresh number,
and checks the invariants of :mod:`.support`: no number rung twice; placed calls exist; refused
attempts created nothing; an unknown outcome carries what was sent, where and when. The POST
count on the create route proves what was (not) re-sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gcdial.emulator import EmulatorServer
from gcdial.errors import ApiConnectionError, AuthError, RateLimitedError
from gcdial.http import MAX_RETRIES

from .support import (
    CREATE_ROUTE,
    TOKEN_ROUTE,
    Attempt,
    QuickTime,
    async_client,
    check_attempts,
    create_async,
    create_sync,
    created_numbers,
    fresh_number,
    route_count,
    sync_client,
    wait_for_created,
)

DROP = {"route": "create_call", "mode": "drop_after_create"}
HANG = {"route": "create_call", "mode": "hang_after_create", "seconds": 3}


def status(http_status: int, route: str = "create_call", **extra: Any) -> dict[str, Any]:
    return {"route": route, "mode": "status", "status": http_status, **extra}


# id, faults, client settings, expected kind, create POSTs, calls created
CASES: list[tuple[str, list[dict[str, Any]], dict[str, Any], str, int, int]] = [
    ("drop-after-create", [DROP], {}, "unknown", 1, 1),
    ("hang-after-create", [HANG], {"timeout_s": 0.3}, "unknown", 1, 1),
    ("500", [status(500)], {}, "unknown", 1, 0),
    ("502", [status(502, retry_after=1)], {}, "unknown", 1, 0),
    ("503", [status(503, retry_after=1)], {}, "unknown", 1, 0),
    ("504", [status(504)], {}, "unknown", 1, 0),
    ("429-twice", [status(429, retry_after=1, count=2)], {}, "placed", 3, 1),
    ("429-storm", [status(429, retry_after=1)], {}, "refused", MAX_RETRIES + 1, 0),
    ("429-wait-too-long", [status(429, retry_after=600)], {}, "refused", 1, 0),
    ("401-once", [status(401, code="bad.credentials", count=1)], {}, "placed", 2, 1),
    ("403", [status(403, code="missing.permissions")], {}, "refused", 1, 0),
    ("token-503", [status(503, route="token")], {}, "refused", 0, 0),
    (
        "token-slow",
        [{"route": "token", "mode": "latency", "seconds": 1.0}],
        {"timeout_s": 0.2},
        "refused",
        0,
        0,
    ),
    (
        "slow-create",
        [{"route": "create_call", "mode": "latency", "seconds": 0.2}],
        {},
        "placed",
        1,
        1,
    ),
    ("slow-everything", [{"route": "any", "mode": "latency", "seconds": 0.05}], {}, "placed", 1, 1),
]


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize(
    ("case", "faults", "fields", "kind", "posts", "created"), CASES, ids=[c[0] for c in CASES]
)
def test_one_attempt_under_a_fault(
    emulator: EmulatorServer,
    flavour: str,
    case: str,
    faults: list[dict[str, Any]],
    fields: dict[str, Any],
    kind: str,
    posts: int,
    created: int,
) -> None:
    for fault in faults:
        emulator.add_fault(**fault)
    time = QuickTime()
    number = fresh_number()
    if flavour == "sync":
        with sync_client(emulator, time, **fields) as client:
            attempt = create_sync(client, number)
    else:

        async def go() -> Attempt:
            async with async_client(emulator, time, **fields) as client:
                return await create_async(client, number)

        attempt = asyncio.run(go())
    emulator.clear_faults()
    assert attempt.kind == kind, f"{case}: {attempt.error!r}"
    assert route_count(emulator, CREATE_ROUTE) == posts
    assert wait_for_created(emulator, number, within_s=0.5 if created else 0.0) == created
    check_attempts(emulator, [attempt])
    if case == "429-twice":
        assert time.sleeps == [1.0, 1.0], "waited Retry-After, through the shared budget"
    if case == "429-wait-too-long":
        assert isinstance(attempt.error, RateLimitedError)
        assert attempt.error.retry_after == 600
        assert time.sleeps == []
    if case == "token-503":
        assert isinstance(attempt.error, AuthError)
    if case == "token-slow":
        assert isinstance(attempt.error, ApiConnectionError)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_slow_answer_past_the_timeout_is_unknown_and_rung_at_most_once(
    emulator: EmulatorServer, flavour: str
) -> None:
    # The server sits on the request, then acts on it after the client gave up.
    emulator.add_fault(route="create_call", mode="latency", seconds=0.6)
    time = QuickTime()
    number = fresh_number()
    if flavour == "sync":
        with sync_client(emulator, time, timeout_s=0.2) as client:
            attempt = create_sync(client, number)
    else:

        async def go() -> Attempt:
            async with async_client(emulator, time, timeout_s=0.2) as client:
                return await create_async(client, number)

        attempt = asyncio.run(go())
    assert attempt.kind == "unknown"
    assert route_count(emulator, CREATE_ROUTE) == 1
    wait_for_created(emulator, number, within_s=1.5)
    check_attempts(emulator, [attempt])


def test_a_5xx_burst_mid_run(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="create_call", mode="status", status=503, count=3)
    with sync_client(emulator, QuickTime()) as client:
        attempts = [create_sync(client, fresh_number()) for _ in range(5)]
    assert [a.kind for a in attempts] == ["unknown"] * 3 + ["placed"] * 2
    assert route_count(emulator, CREATE_ROUTE) == 5
    check_attempts(emulator, attempts)


@pytest.mark.parametrize("how", ["expire", "revoke"])
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_token_lost_mid_run(emulator: EmulatorServer, how: str, flavour: str) -> None:
    lose = emulator.expire_tokens if how == "expire" else emulator.revoke_tokens
    time = QuickTime()
    numbers = [fresh_number() for _ in range(3)]
    if flavour == "sync":
        with sync_client(emulator, time) as client:
            attempts = [create_sync(client, numbers[0])]
            lose()
            attempts += [create_sync(client, n) for n in numbers[1:]]
    else:

        async def go() -> list[Attempt]:
            async with async_client(emulator, time) as client:
                first = [await create_async(client, numbers[0])]
                lose()
                rest = await asyncio.gather(*(create_async(client, n) for n in numbers[1:]))
                return first + list(rest)

        attempts = asyncio.run(go())
    assert [a.kind for a in attempts] == ["placed"] * 3
    # One refused POST (401: not acted on) and one new token, shared by the concurrent ones.
    assert route_count(emulator, TOKEN_ROUTE) == 2
    assert route_count(emulator, CREATE_ROUTE) <= 3 + 2
    check_attempts(emulator, attempts)


def test_a_429_storm_on_concurrent_calls_rings_each_once(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="create_call", mode="status", status=429, retry_after=1, count=6)
    time = QuickTime()

    async def go() -> list[Attempt]:
        async with async_client(emulator, time) as client:
            numbers = [fresh_number() for _ in range(8)]
            return list(await asyncio.gather(*(create_async(client, n) for n in numbers)))

    attempts = asyncio.run(go())
    check_attempts(emulator, attempts)
    placed = [a for a in attempts if a.kind == "placed"]
    assert len(placed) + sum(a.kind == "refused" for a in attempts) == 8
    assert sum(created_numbers(emulator).values()) == len(placed)
    assert all(isinstance(a.error, RateLimitedError) for a in attempts if a.kind == "refused")
