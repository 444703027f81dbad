"""The transport over real HTTP: error mapping, retries, the never-twice rule for create-call."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gcdial.auth import MAX_TOKEN_RENEWALS
from gcdial.config import Settings
from gcdial.emulator import EmulatorServer
from gcdial.errors import (
    ApiConnectionError,
    ApiError,
    AuthenticationError,
    BadRequestError,
    CallOutcomeUnknownError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
)
from gcdial.http import INITIAL_BACKOFF_S, JITTER_FRACTION, MAX_RETRIES

from .conftest import MakeClient
from .support import ALICE, ON_BEHALF_ROUTE, TOKEN_ROUTE, emu_settings, route_count
from .timefake import FakeTime

GET_CALL_ROUTE = "GET /api/v2/conversations/calls/{conversationId}"
SOME_CALL = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitedError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_status_maps_to_its_error_with_the_context_id(
    emulator: EmulatorServer, make_client: MakeClient, status: int, error_type: type[ApiError]
) -> None:
    emulator.add_fault(route="get_call", mode="status", status=status)
    client = make_client(max_retries=0)
    with pytest.raises(error_type) as caught:
        client.calls.get(SOME_CALL)
    error = caught.value
    assert error.status == status
    assert error.context_id
    assert error.context_id in str(error)
    assert error.code is not None
    assert error.code in str(error)
    if status != 400:  # a plain bad.request has no generic advice; its message is the advice
        assert error.hint


def test_a_persistent_401_renews_the_token_up_to_the_bound_then_fails(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    emulator.add_fault(route="get_call", mode="status", status=401)
    with pytest.raises(AuthenticationError):
        make_client().calls.get(SOME_CALL)
    assert route_count(emulator, TOKEN_ROUTE) == 1 + MAX_TOKEN_RENEWALS
    assert route_count(emulator, GET_CALL_ROUTE) == 1 + MAX_TOKEN_RENEWALS


def test_expired_token_is_renewed_transparently(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    client = make_client()
    client.agents.get(ALICE)
    emulator.expire_tokens()
    assert client.agents.get(ALICE).id == ALICE
    assert route_count(emulator, TOKEN_ROUTE) == 2


def test_get_retries_503_honouring_retry_after(
    emulator: EmulatorServer, make_client: MakeClient, fake_time: FakeTime
) -> None:
    client = make_client()
    created = client.calls.create(ALICE, to="+14155550100", check_agent=False)
    emulator.add_fault(route="get_call", mode="status", status=503, retry_after=3, count=2)
    assert client.calls.get(created.id).id == created.id
    assert fake_time.sleeps == [3.0, 3.0]
    assert route_count(emulator, GET_CALL_ROUTE) == 3


def test_get_retries_429_through_the_shared_budget(
    emulator: EmulatorServer, make_client: MakeClient, fake_time: FakeTime
) -> None:
    client = make_client()
    created = client.calls.create(ALICE, to="+14155550100", check_agent=False)
    emulator.add_fault(route="get_call", mode="status", status=429, retry_after=2, count=1)
    assert client.calls.get(created.id).id == created.id
    assert fake_time.sleeps == [2.0]
    assert client.budget.rate_limited_count == 1
    assert route_count(emulator, GET_CALL_ROUTE) == 2


def test_get_without_retry_after_backs_off_with_jitter(
    emulator: EmulatorServer, make_client: MakeClient, fake_time: FakeTime
) -> None:
    emulator.add_fault(route="get_call", mode="status", status=502)
    with pytest.raises(ServerError):
        make_client().calls.get(SOME_CALL)
    assert len(fake_time.sleeps) == MAX_RETRIES
    for attempt, slept in enumerate(fake_time.sleeps):
        base = INITIAL_BACKOFF_S * 2**attempt
        assert base * (1 - JITTER_FRACTION) <= slept <= base
    assert route_count(emulator, GET_CALL_ROUTE) == MAX_RETRIES + 1


def test_a_too_long_retry_after_is_reported_not_slept(
    emulator: EmulatorServer, make_client: MakeClient, fake_time: FakeTime
) -> None:
    emulator.add_fault(route="get_call", mode="status", status=429, retry_after=600)
    with pytest.raises(RateLimitedError) as caught:
        make_client().calls.get(SOME_CALL)
    assert caught.value.retry_after == 600
    assert fake_time.sleeps == []


def test_dropped_create_is_outcome_unknown_and_never_resent(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    emulator.add_fault(route="create_call", mode="drop_after_create", count=1)
    with pytest.raises(CallOutcomeUnknownError) as caught:
        make_client().calls.create("alice@example.com", to="+14155550100")
    error = caught.value
    assert error.method == "POST"
    assert error.url.endswith(f"/api/v2/conversations/calls/user/{ALICE}")
    assert error.body == {"phoneNumber": "+14155550100"}
    assert error.sent_at.tzinfo is not None
    assert error.cause is not None
    assert "may or may not" in str(error)
    # The non-negotiable: the call exists exactly once and the POST went out exactly once.
    assert len(emulator.calls_created()) == 1
    assert route_count(emulator, ON_BEHALF_ROUTE) == 1


def test_create_answered_late_is_outcome_unknown(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    emulator.add_fault(route="create_call", mode="hang_after_create", seconds=5, count=1)
    client = make_client(emu_settings(emulator, timeout_s=0.3))
    with pytest.raises(CallOutcomeUnknownError) as caught:
        client.calls.create(ALICE, to="+14155550100", check_agent=False)
    assert "Timeout" in type(caught.value.cause).__name__
    assert len(emulator.calls_created()) == 1
    assert route_count(emulator, ON_BEHALF_ROUTE) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_create_after_5xx_is_outcome_unknown_and_never_resent(
    emulator: EmulatorServer, make_client: MakeClient, fake_time: FakeTime, status: int
) -> None:
    emulator.add_fault(route="create_call", mode="status", status=status, retry_after=1)
    with pytest.raises(CallOutcomeUnknownError) as caught:
        make_client().calls.create(ALICE, to="+14155550100", check_agent=False)
    assert isinstance(caught.value.cause, ServerError)
    assert route_count(emulator, ON_BEHALF_ROUTE) == 1
    assert fake_time.sleeps == []


def test_create_after_429_is_resent_once_and_rings_once(
    emulator: EmulatorServer, make_client: MakeClient, fake_time: FakeTime
) -> None:
    emulator.add_fault(route="create_call", mode="status", status=429, retry_after=2, count=1)
    created = make_client().calls.create(ALICE, to="+14155550100", check_agent=False)
    assert [c["id"] for c in emulator.calls_created()] == [created.id]
    assert route_count(emulator, ON_BEHALF_ROUTE) == 2
    assert fake_time.sleeps == [2.0]


@pytest.mark.parametrize("status", [400, 403, 404])
def test_create_refused_is_the_api_error(
    emulator: EmulatorServer, make_client: MakeClient, status: int
) -> None:
    emulator.add_fault(route="create_call", mode="status", status=status)
    with pytest.raises(ApiError) as caught:
        make_client().calls.create(ALICE, to="+14155550100", check_agent=False)
    assert caught.value.status == status
    assert route_count(emulator, ON_BEHALF_ROUTE) == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_connection_refused_is_retried_then_a_connection_error(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    settings = Settings(
        api_base_url=f"http://127.0.0.1:{_free_port()}", access_token="t", call_route="on_behalf"
    )
    client = make_client(settings)
    with pytest.raises(ApiConnectionError) as get_error:
        client.calls.get(SOME_CALL)
    assert not isinstance(get_error.value, CallOutcomeUnknownError)
    assert len(fake_time.sleeps) == MAX_RETRIES
    fake_time.sleeps.clear()
    # Connecting failed, so the POST never went out: retrying it is safe, and the end result
    # is a connection error, never an unknown outcome.
    with pytest.raises(ApiConnectionError) as create_error:
        client.calls.create(ALICE, to="+14155550100", check_agent=False)
    assert not isinstance(create_error.value, CallOutcomeUnknownError)
    assert len(fake_time.sleeps) == MAX_RETRIES
    assert "Could not complete POST" in str(create_error.value)


def test_unreachable_login_host_is_a_connection_error(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    settings = Settings(
        api_base_url=f"http://127.0.0.1:{_free_port()}", client_id="id", client_secret="s3cr3t"
    )
    with pytest.raises(ApiConnectionError) as caught:
        make_client(settings).calls.create(ALICE, to="+14155550100", check_agent=False)
    assert not isinstance(caught.value, CallOutcomeUnknownError)
    assert "s3cr3t" not in str(caught.value)


class _JunkHandler(BaseHTTPRequestHandler):
    """Answers like a captive portal or a misconfigured proxy would."""

    def _answer(self) -> None:
        if self.path.startswith("/api/v2/conversations/calls/user/"):
            body, kind = b"{not json at all", "application/json"
        else:
            body, kind = (
                b"<html><body><h1>Welcome to the hotel Wi-Fi</h1></body></html>",
                "text/html",
            )
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def junk_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JunkHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_html_answer_is_a_response_format_error(junk_server: str, make_client: MakeClient) -> None:
    client = make_client(Settings(api_base_url=junk_server, access_token="sekret-token"))
    with pytest.raises(ResponseFormatError) as caught:
        client.calls.get(SOME_CALL)
    text = str(caught.value)
    assert "text/html" in text
    assert "hotel Wi-Fi" in text
    assert "sekret-token" not in text


def test_garbage_answer_to_create_is_outcome_unknown(
    junk_server: str, make_client: MakeClient
) -> None:
    settings = Settings(
        api_base_url=junk_server, access_token="sekret-token", call_route="on_behalf"
    )
    client = make_client(settings)
    with pytest.raises(CallOutcomeUnknownError) as caught:
        client.calls.create(ALICE, to="+14155550100", check_agent=False)
    assert "200" in str(caught.value)
    assert "sekret-token" not in str(caught.value)
