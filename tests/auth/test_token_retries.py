"""The token endpoint gets the retry policy of reads: token requests are safe to repeat.

5xx, 429, timeouts and dropped connections are retried with the same backoff as a GET; a 4xx
such as invalid_client is an answer, not a hiccup, and is never retried. Against the emulator's
faults, with the sleeps recorded instead of slept.
"""

from __future__ import annotations

import random
import socket

import httpx
import pytest

import gcdial
from gcdial.auth import ClientCredentialsAuth
from gcdial.emulator import EmulatorServer
from gcdial.errors import ApiConnectionError, AuthError, InvalidClientError
from gcdial.http import INITIAL_BACKOFF_S, MAX_RETRIES

TOKEN_ROUTE = "POST /oauth/token"


class Sleeps:
    """Records the waits asked for (sync and async) without waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


def _auth(
    emu: EmulatorServer, sleeps: Sleeps, *, secret: str | None = None, **kw: object
) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        emu.client_id,
        secret if secret is not None else emu.client_secret,
        login_base_url=emu.base_url,
        sleep=sleeps,
        async_sleep=sleeps.async_sleep,
        rng=random.Random(7),
        **kw,  # type: ignore[arg-type]
    )


def _token_requests(emu: EmulatorServer) -> int:
    by_route: dict[str, int] = emu.request_counts()["byRoute"]
    return by_route.get(TOKEN_ROUTE, 0)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_burst_is_retried_with_backoff(emulator: EmulatorServer, status: int) -> None:
    emulator.add_fault(route="token", mode="status", status=status, count=2)
    sleeps = Sleeps()
    auth = _auth(emulator, sleeps)
    assert auth.token()
    assert auth.token_requests == 3
    assert _token_requests(emulator) == 3  # both injected failures were served
    assert len(sleeps.waits) == 2
    assert INITIAL_BACKOFF_S * 0.75 <= sleeps.waits[0] <= INITIAL_BACKOFF_S
    assert sleeps.waits[1] > sleeps.waits[0]  # exponential, as for reads


async def test_async_token_retries_too(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="token", mode="status", status=503, count=1)
    sleeps = Sleeps()
    auth = _auth(emulator, sleeps)
    assert await auth.atoken()
    assert auth.token_requests == 2
    assert _token_requests(emulator) == 2
    assert len(sleeps.waits) == 1


def test_a_429_waits_for_retry_after(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="token", mode="status", status=429, retry_after=3, count=1)
    sleeps = Sleeps()
    auth = _auth(emulator, sleeps)
    assert auth.token()
    assert sleeps.waits == [3.0]
    assert _token_requests(emulator) == 2


def test_a_login_host_down_for_good_fails_after_the_retries(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="token", mode="status", status=503)
    sleeps = Sleeps()
    auth = _auth(emulator, sleeps)
    with pytest.raises(AuthError, match="HTTP 503"):
        auth.token()
    assert auth.token_requests == MAX_RETRIES + 1
    assert _token_requests(emulator) == MAX_RETRIES + 1
    assert len(sleeps.waits) == MAX_RETRIES


def test_a_timeout_is_retried(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="token", mode="latency", seconds=1.0, count=1)
    sleeps = Sleeps()
    auth = _auth(emulator, sleeps, timeout=httpx.Timeout(0.2))
    assert auth.token()
    assert auth.token_requests == 2
    assert len(sleeps.waits) == 1


def test_a_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = Sleeps()
    auth = ClientCredentialsAuth(
        "id", "secret-xyz-123", login_base_url=f"http://127.0.0.1:{port}", sleep=sleeps
    )
    with pytest.raises(ApiConnectionError, match="nothing was sent to the API"):
        auth.token()
    assert auth.token_requests == MAX_RETRIES + 1
    assert len(sleeps.waits) == MAX_RETRIES


def test_invalid_client_is_never_retried(emulator: EmulatorServer) -> None:
    sleeps = Sleeps()
    auth = _auth(emulator, sleeps, secret="not-the-secret")
    with pytest.raises(InvalidClientError):
        auth.token()
    assert auth.token_requests == 1
    assert _token_requests(emulator) == 1
    assert sleeps.waits == []


def test_a_client_rides_out_one_token_503(emulator: EmulatorServer) -> None:
    """The symptom: one 503 from the login host used to fail a whole campaign start."""
    emulator.add_fault(route="token", mode="status", status=503, count=1)
    with gcdial.Client(
        base_url=emulator.base_url,
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
    ) as client:
        assert client.agents.get("alice@example.com").email == "alice@example.com"
    assert _token_requests(emulator) == 2
