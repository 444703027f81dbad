"""Server answers of every shape, over real HTTP: a correct result or gcdial's own clear error.

A scripted loopback server answers the token, create-call, get-call and users requests with
hypothesis-generated statuses, headers and bodies (missing fields, wrong types, HTML, huge,
deeply nested or truncated JSON, unknown enum values, wrong content types, cut connections).
Whatever comes back, gcdial must return a right answer or raise a GcdialError whose text holds
neither the client secret nor a token; a create-call is never re-sent except after a 429 or a
401; and no answer may make gcdial sleep longer than its own cap.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gcdial.auth import MAX_TOKEN_RENEWALS
from gcdial.client import Client
from gcdial.config import Settings
from gcdial.errors import (
    ApiError,
    AuthenticationError,
    CallOutcomeUnknownError,
    GcdialError,
    RateLimitedError,
)
from gcdial.http import MAX_RETRIES, MAX_RETRY_AFTER_S
from gcdial.models import CallConversation, CallCreated

from .props import NETWORK, assert_clear
from .scripted_server import ISSUED_TOKEN, Reply, ScriptedServer, serve

CLIENT_ID = "scripted-client"
SECRET = "Zq7-responses-SECRET-4c1f"
BASIC = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
GENERATED_TOKEN = "gen-tok-5f0c2e9a1d7b"
# GENERATED_TOKEN is a secret only where the token endpoint may have issued it; elsewhere it is
# just text in a body, which gcdial may quote.
SECRETS = [SECRET, BASIC, ISSUED_TOKEN]
ALICE = "11111111-1111-4111-8111-111111111111"

GOOD_CONVERSATION = {
    "id": "c-1",
    "participants": [
        {"id": "p1", "purpose": "agent", "state": "connected", "user": {"id": ALICE}},
        {"id": "p2", "purpose": "external", "state": "dialing", "address": "tel:+14155550100"},
    ],
}
GOOD_USER = {
    "id": ALICE,
    "name": "Alice",
    "email": "alice@example.com",
    "state": "active",
    "station": {"associatedStation": {"id": "s1", "name": "alice-webrtc"}},
    "presence": {"presenceDefinition": {"systemPresence": "AVAILABLE"}},
}


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    yield from serve()


class Sleeps:
    """Instant fake time that remembers every wait gcdial asked for."""

    def __init__(self) -> None:
        self.now = 0.0
        self.asked: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.now += max(0.0, seconds)


def client_for(server: ScriptedServer, sleeps: Sleeps) -> Client:
    settings = Settings.model_validate(
        {
            "api_base_url": server.base_url,
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "timeout_s": 5.0,
        }
    )
    return Client(settings, clock=sleeps.clock, sleep=sleeps.sleep, rng=random.Random(0))


# ---- what the server may answer -------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
states = st.one_of(
    st.sampled_from(["alerting", "dialing", "connected", "disconnected", "terminated"]),
    st.sampled_from(["quantum-superposition", "CONNECTED", "", "none"]),
    json_scalars,
)


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(value, json_values)


participants = st.fixed_dictionaries(
    {},
    optional={
        "id": maybe(st.text(min_size=1, max_size=6)),
        "purpose": maybe(st.sampled_from(["agent", "external", "customer", "acd", "robot"])),
        "state": states,
        "disconnectType": maybe(st.sampled_from(["endpoint", "peer", "transfer.nowhere"])),
        "startTime": maybe(st.sampled_from(["2026-01-01T00:00:00.000Z", "yesterday", "0"])),
        "user": maybe(st.fixed_dictionaries({"id": maybe(st.text(max_size=6))})),
        "errorInfo": maybe(st.fixed_dictionaries({"code": json_scalars})),
    },
)
nearly_right = st.one_of(
    # conversation-, user- and created-shaped objects with fields missing or of the wrong type
    st.fixed_dictionaries(
        {},
        optional={
            "id": maybe(st.text(max_size=8)),
            "participants": maybe(st.lists(participants, max_size=3)),
            "selfUri": json_values,
        },
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "id": maybe(st.text(max_size=8)),
            "email": maybe(st.just("alice@example.com")),
            "state": maybe(st.sampled_from(["active", "inactive", "deleted"])),
            "station": json_values,
            "presence": json_values,
            "total": json_values,
            "results": maybe(st.lists(json_values, max_size=2)),
        },
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "access_token": maybe(st.just(GENERATED_TOKEN)),
            "expires_in": json_values,
            "token_type": json_values,
            "error": maybe(st.sampled_from(["invalid_client", "invalid_grant", "weird_error"])),
            "error_description": maybe(
                st.sampled_from([f"secret {SECRET} is wrong", f"Authorization: Basic {BASIC}"])
            ),
        },
    ),
    # an ErrorBody, possibly echoing what it was sent
    st.fixed_dictionaries(
        {},
        optional={
            "message": maybe(
                st.sampled_from(
                    [
                        "Rate limit exceeded",
                        f"Authorization: Bearer {ISSUED_TOKEN}",
                        f"access_token={ISSUED_TOKEN}",
                    ]
                )
            ),
            "code": maybe(st.sampled_from(["not.found", "bad.credentials", "too.many.requests"])),
            "contextId": json_values,
            "messageParams": json_values,
        },
    ),
)
json_bodies = st.one_of(nearly_right, json_values).map(lambda v: json.dumps(v).encode())
other_bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"<html><body><h1>Captive portal</h1></body></html>",
            f"<html><pre>Authorization: Bearer {ISSUED_TOKEN}</pre></html>".encode(),
            b'{"id": "c-1", "participants": [',
            b'{"id": "\xff\xfe"}',
            b"null",
            b'"just a string"',
            b"[" * 100_000,
            b'{"a":' * 50_000,
            b'{"id": "' + b"x" * 3_000_000 + b'"}',
            b" " * 2_000_000 + b"{}",
        ]
    ),
    json_bodies.flatmap(lambda b: st.integers(0, max(0, len(b) - 1)).map(lambda n: b[:n])),
)
bodies = st.one_of(json_bodies, other_bodies)
header_values = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 .,:;-=+/", max_size=20)
extra_headers = st.lists(
    st.one_of(
        st.tuples(
            st.just("Retry-After"),
            st.sampled_from(
                ["0", "1", "2.5", "-1", "abc", "1e9", "nan", "inf", "Wed, 21 Oct 2015 07:28:00 GMT"]
            ),
        ),
        st.tuples(
            st.sampled_from(
                ["inin-ratelimit-count", "inin-ratelimit-allowed", "inin-ratelimit-reset"]
            ),
            st.sampled_from(["0", "1", "300", "-5", "1e9", "x", "nan", "99999999999"]),
        ),
        st.tuples(st.sampled_from(["ININ-Correlation-Id", "X-Junk"]), header_values),
    ),
    max_size=4,
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=latin-1",
        "text/html",
        "text/plain",
        "application/octet-stream",
        "application/problem+json",
        "",
    ]
)
statuses = st.sampled_from(
    [200, 201, 202, 204, 301, 302, 400, 401, 403, 404, 409, 418, 429, 500, 502, 503, 504, 599]
)
replies = st.builds(
    lambda status, ctype, extra, body, mode: Reply(
        status=status,
        headers=((("Content-Type", ctype),) if ctype else ()) + tuple(extra),
        body=b"" if status == 204 else body,
        mode=mode,
    ),
    statuses,
    content_types,
    extra_headers,
    bodies,
    st.sampled_from(["normal"] * 8 + ["truncate", "close"]),
)


def good(body: object) -> Reply:
    return Reply(body=json.dumps(body).encode())


def outcome(action: Any) -> object:
    try:
        return action()
    except GcdialError as exc:
        return exc


def common_checks(result: object, sleeps: Sleeps, *, issued: tuple[str, ...] = ()) -> None:
    if isinstance(result, BaseException):
        assert_clear(result, secrets=[*SECRETS, *issued])
    too_long = [s for s in sleeps.asked if s > MAX_RETRY_AFTER_S]
    assert not too_long, f"gcdial would have slept {too_long} s on the server's word"


# ---- the properties -------------------------------------------------------------------------


@NETWORK
@given(reply=replies)
@example(reply=Reply(body=b'{"error": "invalid_client"}', status=401))
@example(reply=Reply(status=200, body=b"<html>hi</html>", headers=(("Content-Type", "text/html"),)))
@example(
    reply=Reply(status=400, body=json.dumps({"error": "x", "error_description": SECRET}).encode())
)
@example(reply=Reply(mode="close"))
@example(
    reply=Reply(status=400, body=b'{"error": "x", "error_description": "' + BASIC.encode() + b'"}')
)
def test_token_endpoint_answers(server: ScriptedServer, reply: Reply) -> None:
    server.script(token=reply, get_call=good(GOOD_CONVERSATION))
    sleeps = Sleeps()
    with client_for(server, sleeps) as client:
        result = outcome(lambda: client.calls.get("c-1"))
    common_checks(result, sleeps, issued=(GENERATED_TOKEN,))
    if not isinstance(result, BaseException):
        assert isinstance(result, CallConversation)
        assert result.id == "c-1"


@NETWORK
@given(reply=replies)
@example(reply=Reply(status=200, body=b'{"id": 42}'))
@example(reply=Reply(status=200, body=b'{"id": ""}'))
@example(reply=Reply(status=200, body=b"[" * 100_000))
@example(reply=Reply(status=503, headers=(("Retry-After", "1"),), body=b""))
@example(reply=Reply(status=429, headers=(("Retry-After", "1e9"),), body=b"{}"))
@example(reply=Reply(status=200, mode="truncate", body=b'{"id": "c-1"}'))
def test_create_call_answers(server: ScriptedServer, reply: Reply) -> None:
    server.script(create=reply)
    sleeps = Sleeps()
    with client_for(server, sleeps) as client:
        result = outcome(lambda: client.calls.create(ALICE, to="+14155550100", check_agent=False))
    common_checks(result, sleeps)
    sent = server.seen["create"]
    if isinstance(result, CallCreated):
        assert 200 <= reply.status < 300
        assert reply.mode == "normal"
        assert result.id.strip(), "a created call without a usable conversation id"
        assert sent == 1
    elif isinstance(result, RateLimitedError):
        assert reply.status == 429
        assert sent <= MAX_RETRIES + 1
    elif isinstance(result, AuthenticationError):
        assert reply.status == 401
        # Re-sent with each newer token, up to the bound: a 401 means the server did not act.
        assert sent == 1 + MAX_TOKEN_RENEWALS
    else:
        # Anything else after sending: exactly one POST, and it must say the outcome is unknown
        # unless the server plainly refused it (4xx). A redirect is no proof of refusal.
        assert sent == 1, f"the create-call was sent {sent} times"
        if 200 <= reply.status < 400 or reply.status >= 500 or reply.mode != "normal":
            assert isinstance(result, CallOutcomeUnknownError), repr(result)
            assert result.body == {"phoneNumber": "+14155550100"}
        else:
            assert isinstance(result, ApiError)
            assert result.status == reply.status


WINDOW_USED_UP_FOR_AGES = (
    ("inin-ratelimit-count", "300"),
    ("inin-ratelimit-allowed", "300"),
    ("inin-ratelimit-reset", "1e9"),
)


@NETWORK
@given(reply=replies)
@example(reply=Reply(status=200, body=b'{"a":' * 50_000))
@example(reply=Reply(status=503, headers=WINDOW_USED_UP_FOR_AGES, body=b"{}"))
@example(reply=Reply(status=404, body=b'{"message": "Bearer ' + ISSUED_TOKEN.encode() + b'"}'))
def test_get_call_answers(server: ScriptedServer, reply: Reply) -> None:
    server.script(get_call=reply)
    sleeps = Sleeps()
    with client_for(server, sleeps) as client:
        result = outcome(lambda: client.calls.get("c-1"))
    common_checks(result, sleeps)
    if not isinstance(result, BaseException):
        assert isinstance(result, CallConversation)


@NETWORK
@given(reply=replies, by_email=st.booleans())
def test_users_answers(server: ScriptedServer, reply: Reply, by_email: bool) -> None:
    server.script(users=reply)
    sleeps = Sleeps()
    agent = "alice@example.com" if by_email else ALICE
    with client_for(server, sleeps) as client:
        result = outcome(lambda: client.agents.check(agent))
    common_checks(result, sleeps)


@NETWORK
@given(
    extra=st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=3),
    state=st.text(min_size=1, max_size=20),
    purpose=st.sampled_from(["external", "customer"]),
)
def test_unknown_enum_values_and_fields_are_kept(
    server: ScriptedServer, extra: dict[str, Any], state: str, purpose: str
) -> None:
    conversation = {
        **extra,
        "id": "c-1",
        "participants": [
            {"id": "p2", "purpose": purpose, "state": state, "disconnectType": "transfer.x"},
            {"id": "p1", "purpose": "agent", "state": "connected", "user": {"id": ALICE}},
        ],
    }
    server.script(get_call=good(conversation))
    with client_for(server, Sleeps()) as client:
        result = client.calls.get("c-1")
    customer = result.customer_participant()
    assert customer is not None
    assert customer.state == state
    assert customer.disconnect_type == "transfer.x"
    agent = result.agent_participant(ALICE)
    assert agent is not None
    assert agent.id == "p1"


def test_a_good_user_passes_the_check(server: ScriptedServer) -> None:
    server.script(users=good(GOOD_USER))
    with client_for(server, Sleeps()) as client:
        readiness = client.agents.check(ALICE)
    assert readiness.agent.id == ALICE
    assert readiness.presence == "AVAILABLE"


# ---- the defects these properties found --------------------------------------------------------


@pytest.mark.parametrize("kind", ["create", "get_call"])
def test_deeply_nested_json_is_a_clear_error(server: ScriptedServer, kind: str) -> None:
    server.script(**{kind: Reply(body=b"[" * 100_000)})
    with client_for(server, Sleeps()) as client:
        result = outcome(
            (lambda: client.calls.create(ALICE, to="+14155550100", check_agent=False))
            if kind == "create"
            else (lambda: client.calls.get("c-1"))
        )
    assert isinstance(result, CallOutcomeUnknownError if kind == "create" else GcdialError)


@pytest.mark.parametrize("body", [b'{"id": ""}', b'{"id": "   "}'])
def test_blank_conversation_id_is_outcome_unknown(server: ScriptedServer, body: bytes) -> None:
    server.script(create=Reply(body=body))
    with client_for(server, Sleeps()) as client:
        result = outcome(lambda: client.calls.create(ALICE, to="+14155550100", check_agent=False))
    assert isinstance(result, CallOutcomeUnknownError)


def test_an_absurd_ratelimit_reset_is_not_slept(server: ScriptedServer) -> None:
    window = (
        ("inin-ratelimit-count", "300"),
        ("inin-ratelimit-allowed", "300"),
        ("inin-ratelimit-reset", "1e9"),
    )
    server.script(get_call=Reply(status=503, headers=window, body=b"{}"))
    sleeps = Sleeps()
    with client_for(server, sleeps) as client:
        outcome(lambda: client.calls.get("c-1"))
    assert max(sleeps.asked, default=0.0) <= MAX_RETRY_AFTER_S


def test_a_proxy_page_echoing_the_bearer_header_is_redacted(server: ScriptedServer) -> None:
    page = f"<html><pre>Authorization: Bearer {ISSUED_TOKEN}</pre></html>".encode()
    server.script(get_call=Reply(headers=(("Content-Type", "text/html"),), body=page))
    with client_for(server, Sleeps()) as client:
        result = outcome(lambda: client.calls.get("c-1"))
    assert "Bearer ***" in str(result)
    common_checks(result, Sleeps())


def test_login_host_echoing_basic_credentials_is_scrubbed(server: ScriptedServer) -> None:
    said = {"error": "invalid_request", "error_description": f"Authorization: Basic {BASIC}"}
    server.script(
        token=Reply(status=400, body=json.dumps(said).encode()), get_call=good(GOOD_CONVERSATION)
    )
    with client_for(server, Sleeps()) as client:
        result = outcome(lambda: client.calls.get("c-1"))
    common_checks(result, Sleeps())


@pytest.mark.parametrize(
    "reply",
    [
        Reply(headers=(("Content-Type", "text/html"),), body=f"<p>{ISSUED_TOKEN}</p>".encode()),
        Reply(status=404, body=json.dumps({"message": f"token {ISSUED_TOKEN} unknown"}).encode()),
        Reply(status=400, body=json.dumps({"message": f"Bearer {ISSUED_TOKEN}"}).encode()),
    ],
    ids=["html-raw-token", "errorbody-raw-token", "errorbody-bearer"],
)
def test_a_token_echoed_by_the_server_is_not_quoted(server: ScriptedServer, reply: Reply) -> None:
    server.script(get_call=reply)
    with client_for(server, Sleeps()) as client:
        result = outcome(lambda: client.calls.get("c-1"))
    common_checks(result, Sleeps())


@pytest.mark.parametrize("status", [200, 400])
def test_deeply_nested_token_answer_is_a_clear_error(server: ScriptedServer, status: int) -> None:
    server.script(token=Reply(status=status, body=b"[" * 100_000), get_call=good(GOOD_CONVERSATION))
    with client_for(server, Sleeps()) as client:
        result = outcome(lambda: client.calls.get("c-1"))
    assert isinstance(result, GcdialError)


@pytest.mark.parametrize("status", [303, 307, 308])
@pytest.mark.parametrize("follow", [False, True])
def test_a_redirected_create_call_is_never_followed_and_its_outcome_is_unknown(
    server: ScriptedServer, status: int, follow: bool
) -> None:
    redirect = Reply(
        status=status,
        headers=(("Location", f"{server.base_url}/api/v2/conversations/calls/user/{ALICE}"),),
        body=b"",
    )
    server.script(create=redirect)
    sleeps = Sleeps()
    settings = Settings.model_validate(
        {"api_base_url": server.base_url, "client_id": CLIENT_ID, "client_secret": SECRET}
    )
    # Even a caller's own client that follows redirects must not re-send the POST.
    with (
        httpx.Client(follow_redirects=follow) as http,
        Client(settings, http_client=http, clock=sleeps.clock, sleep=sleeps.sleep) as client,
    ):
        result = outcome(lambda: client.calls.create(ALICE, to="+14155550100", check_agent=False))
    assert isinstance(result, CallOutcomeUnknownError), repr(result)
    assert server.seen["create"] == 1
