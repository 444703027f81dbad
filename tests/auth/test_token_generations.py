"""Refresh by generation: a request refused with 401 goes again once a newer token is at hand.

A 401 means the API did not act on the request, so re-sending it is safe, the create-call POST
included, as many times as the token changes (up to MAX_TOKEN_RENEWALS). The scenario of issue 21:
100 calls in flight on one AsyncClient while the emulator expires (or revokes) every token twice,
a fraction of a second apart. Requests are held 0.3 s by a latency fault so that each token change
finds them on the way, and the token is checked after that wait, as a busy API would.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from gcdial.auth import MAX_TOKEN_RENEWALS, ClientCredentialsAuth, renew_after
from gcdial.client import AsyncClient
from gcdial.emulator import EmulatorServer

ALICE = "11111111-1111-4111-8111-111111111111"
CALLS = 100
USER_ROUTE = "GET /api/v2/users/{userId}"
TOKEN_ROUTE = "POST /oauth/token"


def _number(i: int) -> str:
    return f"+1415555{100 + i:04d}"


@pytest.mark.parametrize("how", ["expire", "revoke"])
async def test_two_token_changes_close_together_fail_no_call_in_flight(
    make_emulator: Any, how: str
) -> None:
    emu: EmulatorServer = make_emulator(rate_limit_per_minute=1_000_000)
    emu.add_fault(route="users", mode="latency", seconds=0.3)
    emu.add_fault(route="create_call", mode="latency", seconds=0.3)
    change = emu.expire_tokens if how == "expire" else emu.revoke_tokens

    async with AsyncClient(
        base_url=emu.base_url, client_id=emu.client_id, client_secret=emu.client_secret
    ) as client:

        async def change_twice() -> None:
            # Each change comes while requests are held with the newest token: the first soon
            # after token 1 is out, the second soon after token 2 replaced it.
            auth = client.auth
            assert isinstance(auth, ClientCredentialsAuth)
            for fetched in (1, 2):
                while auth.token_requests < fetched:  # noqa: ASYNC110 - a counter, no event
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.1)
                await asyncio.to_thread(change)

        changes = asyncio.create_task(change_twice())
        results = await asyncio.gather(
            *(client.calls.create(ALICE, to=_number(i)) for i in range(CALLS)),
            return_exceptions=True,
        )
        await changes
        auth = client.auth

    failed = [repr(r) for r in results if isinstance(r, BaseException)]
    assert failed == []
    created = emu.calls_created()
    dialed = Counter(call["phoneNumber"] for call in created)
    assert len(created) == CALLS
    assert max(dialed.values()) == 1  # no call placed twice
    assert isinstance(auth, ClientCredentialsAuth)
    # One token, then one per change however many requests were refused: shared, not per request.
    assert auth.token_requests == 3
    assert emu.request_counts()["byRoute"][TOKEN_ROUTE] == 3


def test_one_request_rides_out_two_token_changes(emulator: EmulatorServer) -> None:
    # Two 401s in a row (the sync flow): each re-send waits for a token newer than the refused one.
    emulator.add_fault(route="users", mode="status", status=401, code="bad.credentials", count=2)
    auth = ClientCredentialsAuth(
        emulator.client_id, emulator.client_secret, login_base_url=emulator.base_url
    )
    with httpx.Client(base_url=emulator.base_url, auth=auth) as client:
        response = client.get(f"/api/v2/users/{ALICE}")
    assert response.status_code == 200
    assert auth.token_requests == 3
    assert emulator.request_counts()["byRoute"][USER_ROUTE] == 3


def test_a_token_refused_however_fresh_ends_after_the_bound(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="users", mode="status", status=401, code="bad.credentials")
    auth = ClientCredentialsAuth(
        emulator.client_id, emulator.client_secret, login_base_url=emulator.base_url
    )
    with httpx.Client(base_url=emulator.base_url, auth=auth) as client:
        response = client.get(f"/api/v2/users/{ALICE}")
    assert response.status_code == 401
    assert auth.token_requests == 1 + MAX_TOKEN_RENEWALS
    assert emulator.request_counts()["byRoute"][USER_ROUTE] == 1 + MAX_TOKEN_RENEWALS


@pytest.mark.parametrize(
    ("status", "renewals", "again"),
    [
        (401, 0, True),
        (401, MAX_TOKEN_RENEWALS - 1, True),
        (401, MAX_TOKEN_RENEWALS, False),
        (403, 0, False),  # an answer about permissions: a new token would not change it
        (200, 0, False),
        (500, 0, False),  # the transport's retry policy decides about these, not the auth
    ],
)
def test_renew_after(status: int, renewals: int, again: bool) -> None:
    assert renew_after(status, renewals) is again
