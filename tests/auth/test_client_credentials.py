"""ClientCredentialsAuth over real HTTP against the emulator (and a real garbage server)."""

import asyncio
import http.server
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gcdial.auth import REFRESH_MARGIN_S, ClientCredentialsAuth, is_user_token
from gcdial.emulator import EmulatorServer
from gcdial.errors import (
    ApiConnectionError,
    AuthError,
    GcdialError,
    InvalidClientError,
    ResponseFormatError,
)
from gcdial.http import ApiTransport

ALICE = "11111111-1111-4111-8111-111111111111"
TOKEN_ROUTE = "POST /oauth/token"
USER_ROUTE = "GET /api/v2/users/{userId}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_auth(emu: EmulatorServer, **kw: object) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        emu.client_id,
        emu.client_secret,
        login_base_url=emu.base_url,
        **kw,  # type: ignore[arg-type]
    )


def counts(emu: EmulatorServer) -> dict[str, int]:
    by_route: dict[str, int] = emu.request_counts()["byRoute"]
    return by_route


def test_token_is_fetched_once_and_reused(emulator: EmulatorServer) -> None:
    auth = make_auth(emulator)
    assert not is_user_token(auth)
    with httpx.Client(base_url=emulator.base_url, auth=auth) as client:
        for _ in range(3):
            response = client.get(f"/api/v2/users/{ALICE}")
            assert response.status_code == 200
            assert response.json()["id"] == ALICE
    assert auth.token_requests == 1
    assert counts(emulator)[TOKEN_ROUTE] == 1
    assert counts(emulator)[USER_ROUTE] == 3


async def test_fifty_concurrent_async_requests_make_one_token_request(
    emulator: EmulatorServer,
) -> None:
    auth = make_auth(emulator)
    async with httpx.AsyncClient(base_url=emulator.base_url, auth=auth) as client:
        responses = await asyncio.gather(*(client.get(f"/api/v2/users/{ALICE}") for _ in range(50)))
    assert [r.status_code for r in responses] == [200] * 50
    assert auth.token_requests == 1
    assert counts(emulator)[TOKEN_ROUTE] == 1
    assert counts(emulator)[USER_ROUTE] == 50


def test_fifty_concurrent_threads_make_one_token_request(emulator: EmulatorServer) -> None:
    auth = make_auth(emulator)
    with (
        httpx.Client(base_url=emulator.base_url, auth=auth) as client,
        ThreadPoolExecutor(max_workers=16) as pool,
    ):
        statuses = list(
            pool.map(lambda _: client.get(f"/api/v2/users/{ALICE}").status_code, range(50))
        )
    assert statuses == [200] * 50
    assert counts(emulator)[TOKEN_ROUTE] == 1


def test_token_is_refreshed_shortly_before_it_expires(emulator: EmulatorServer) -> None:
    clock = FakeClock()
    auth = make_auth(emulator, clock=clock)
    lifetime = emulator.config.token_lifetime_s
    with httpx.Client(base_url=emulator.base_url, auth=auth) as client:
        assert client.get(f"/api/v2/users/{ALICE}").status_code == 200
        clock.now += lifetime - REFRESH_MARGIN_S - 1
        assert client.get(f"/api/v2/users/{ALICE}").status_code == 200
        assert auth.token_requests == 1
        clock.now += 2
        assert client.get(f"/api/v2/users/{ALICE}").status_code == 200
    assert auth.token_requests == 2
    assert counts(emulator)[TOKEN_ROUTE] == 2


def test_short_lived_token_uses_a_proportional_margin(make_emulator: object) -> None:
    emu: EmulatorServer = make_emulator(token_lifetime_s=300)  # type: ignore[operator]
    clock = FakeClock()
    auth = make_auth(emu, clock=clock)
    with httpx.Client(base_url=emu.base_url, auth=auth) as client:
        client.get(f"/api/v2/users/{ALICE}")
        clock.now += 269  # margin is min(60, 300 / 10) = 30 s
        client.get(f"/api/v2/users/{ALICE}")
        assert auth.token_requests == 1
        clock.now += 2
        client.get(f"/api/v2/users/{ALICE}")
    assert auth.token_requests == 2


@pytest.mark.parametrize("how", ["revoke", "expire"])
def test_401_refreshes_once_and_resends(emulator: EmulatorServer, how: str) -> None:
    auth = make_auth(emulator)
    with httpx.Client(base_url=emulator.base_url, auth=auth) as client:
        assert client.get(f"/api/v2/users/{ALICE}").status_code == 200
        if how == "revoke":
            emulator.revoke_tokens()
        else:
            emulator.expire_tokens()
        response = client.get(f"/api/v2/users/{ALICE}")
    assert response.status_code == 200
    assert auth.token_requests == 2
    assert counts(emulator)[USER_ROUTE] == 3  # 200, 401, re-sent 200


async def test_concurrent_401s_share_one_refresh(emulator: EmulatorServer) -> None:
    auth = make_auth(emulator)
    async with httpx.AsyncClient(base_url=emulator.base_url, auth=auth) as client:
        assert (await client.get(f"/api/v2/users/{ALICE}")).status_code == 200
        emulator.revoke_tokens()
        responses = await asyncio.gather(*(client.get(f"/api/v2/users/{ALICE}") for _ in range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert auth.token_requests == 2
    assert counts(emulator)[TOKEN_ROUTE] == 2


def test_create_call_after_revoke_is_placed_exactly_once(emulator: EmulatorServer) -> None:
    """Through the real transport: the 401 re-send never duplicates a call."""
    auth = make_auth(emulator)
    with httpx.Client() as http_client:
        transport = ApiTransport(http_client, base_url=emulator.base_url, auth=auth)
        transport.request("GET", f"/api/v2/users/{ALICE}", idempotent=True)
        emulator.revoke_tokens()
        response = transport.request(
            "POST",
            f"/api/v2/conversations/calls/user/{ALICE}",
            json={"phoneNumber": "+14155550100"},
            idempotent=False,
        )
    assert response.status_code == 200
    assert len(emulator.calls_created()) == 1
    assert auth.token_requests == 2


def test_invalid_client_names_the_login_host_and_the_region_first(
    emulator: EmulatorServer,
) -> None:
    wrong = "not-the-secret-42"
    auth = ClientCredentialsAuth(emulator.client_id, wrong, login_base_url=emulator.base_url)
    with (
        httpx.Client(base_url=emulator.base_url, auth=auth) as client,
        pytest.raises(InvalidClientError) as info,
    ):
        client.get(f"/api/v2/users/{ALICE}")
    text = str(info.value)
    assert emulator.base_url in text
    assert text.index("region") < text.index("secret")
    assert wrong not in text
    assert info.value.status in {400, 401}
    assert counts(emulator).get(USER_ROUTE, 0) == 0  # nothing reached the API


def test_token_endpoint_server_error(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="token", mode="status", status=503)
    auth = make_auth(emulator)
    with httpx.Client(base_url=emulator.base_url, auth=auth) as client:
        with pytest.raises(AuthError, match="HTTP 503") as info:
            client.get(f"/api/v2/users/{ALICE}")
        assert info.value.status == 503
        emulator.clear_faults()
        assert client.get(f"/api/v2/users/{ALICE}").status_code == 200


def test_unreachable_login_host(unused_port: int) -> None:
    auth = ClientCredentialsAuth(
        "id", "secret-xyz", login_base_url=f"http://127.0.0.1:{unused_port}"
    )
    with httpx.Client() as client, pytest.raises(ApiConnectionError) as info:
        client.get(f"http://127.0.0.1:{unused_port}/api/v2/users/me", auth=auth)
    assert "nothing was sent to the API" in str(info.value)
    assert "secret-xyz" not in str(info.value)


class _GarbageHandler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_POST(self) -> None:
        body = b"<html><body>Welcome to the captive portal</body></html>"
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def garbage_server() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _GarbageHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("status", [200, 404])
def test_html_from_the_login_host_is_a_format_error(garbage_server: str, status: int) -> None:
    _GarbageHandler.status = status
    auth = ClientCredentialsAuth("id", "secret-xyz", login_base_url=garbage_server)
    with httpx.Client() as client, pytest.raises(ResponseFormatError) as info:
        client.get(f"{garbage_server}/api/v2/users/me", auth=auth)
    assert "text/html" in str(info.value)
    assert garbage_server in str(info.value)


async def test_async_errors_are_the_same(emulator: EmulatorServer) -> None:
    auth = ClientCredentialsAuth(emulator.client_id, "wrong", login_base_url=emulator.base_url)
    async with httpx.AsyncClient(base_url=emulator.base_url, auth=auth) as client:
        with pytest.raises(InvalidClientError):
            await client.get(f"/api/v2/users/{ALICE}")


def test_the_secret_never_appears_in_errors_reprs_or_logs(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture, garbage_server: str
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Sup3r-S3cret-Value-0123456789"
    seen: list[str] = []
    tokens: list[str] = []

    def attempt(auth: ClientCredentialsAuth, url: str) -> None:
        seen.append(repr(auth))
        seen.append(auth.describe())
        with httpx.Client() as client:
            try:
                response = client.get(url, auth=auth)
                tokens.append(response.request.headers["authorization"].split()[1])
            except GcdialError as exc:
                seen.extend([str(exc), repr(exc), repr(exc.__dict__)])

    user_url = f"{emulator.base_url}/api/v2/users/{ALICE}"
    attempt(ClientCredentialsAuth("x", secret, login_base_url=emulator.base_url), user_url)
    _GarbageHandler.status = 400
    attempt(ClientCredentialsAuth("x", secret, login_base_url=garbage_server), user_url)
    emulator.add_fault(route="token", mode="status", status=500, count=1)
    attempt(ClientCredentialsAuth("x", secret, login_base_url=emulator.base_url), user_url)
    good = make_auth(emulator)
    attempt(good, user_url)
    assert len(seen) == 4 * 2 + 3 * 3  # every failing attempt did raise
    assert tokens
    everything = "\n".join(seen) + caplog.text
    assert secret not in everything
    assert emulator.client_secret not in everything
    for token in tokens:
        assert token not in everything
