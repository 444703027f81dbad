"""Placing, reading and hanging up calls through Client, over real HTTP to the emulator."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from gcdial.auth import ClientCredentialsAuth
from gcdial.calls import choose_route
from gcdial.emulator import EmulatorServer
from gcdial.errors import BadRequestError, InputError, InvalidPhoneNumberError
from gcdial.login import pkce_login
from gcdial.models import CallConversation

from .conftest import MakeClient
from .support import (
    ALICE,
    BOB,
    ON_BEHALF_ROUTE,
    TOKEN_ROUTE,
    USER_ROUTE,
    emu_settings,
    route_count,
)


def _follow(url: str) -> bool:
    """The 'browser' of the PKCE login: follow the redirects to the loopback server."""
    return httpx.get(url, follow_redirects=True, timeout=10).status_code == 200


def _user_token(emu: EmulatorServer, tmp_path: Path) -> str:
    settings = emu_settings(emu, client_id=None, client_secret=None, config_dir=tmp_path)
    token = pkce_login(settings, client_id="sandbox-pkce", open_browser=_follow, timeout_s=10)
    return token.access_token.get_secret_value()


def test_route_choice() -> None:
    assert choose_route("auto", user_token=False) == "on_behalf"
    assert choose_route("auto", user_token=True) == "user"
    assert choose_route("on_behalf", user_token=True) == "on_behalf"
    assert choose_route("user", user_token=False) == "user"


def test_create_on_behalf_sends_the_real_body(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    client = make_client()
    assert client.calls.route == "on_behalf"
    created = client.calls.create(
        "alice@example.com",
        to="(415) 555-0100",
        caller_id="+1 415 555 0199",
        caller_id_name="Acme Support",
        queue="9ee00002-0000-4000-8000-000000000002",
        attributes={"crmId": "42"},
        label="renewals",
        uui="04AB",
    )
    calls = emulator.calls_created()
    assert [c["id"] for c in calls] == [created.id]
    assert calls[0]["userId"] == ALICE
    assert calls[0]["body"] == {
        "phoneNumber": "+14155550100",
        "callerId": "+14155550199",
        "callerIdName": "Acme Support",
        "callFromQueueId": "9ee00002-0000-4000-8000-000000000002",
        "attributes": {"crmId": "42"},
        "label": "renewals",
        "uuiData": "04AB",
    }
    assert route_count(emulator, ON_BEHALF_ROUTE) == 1
    assert route_count(emulator, TOKEN_ROUTE) == 1


def test_create_by_agent_id_minimal_body(emulator: EmulatorServer, make_client: MakeClient) -> None:
    created = make_client().calls.create(BOB, to="+14155550101", check_agent=False)
    (call,) = emulator.calls_created()
    assert call["id"] == created.id
    assert call["userId"] == BOB
    assert call["body"] == {"phoneNumber": "+14155550101"}
    # No agent lookups when told not to check an agent given by id: only the token and the POST.
    assert emulator.request_counts()["total"] == 2


def test_national_number_uses_the_default_country(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    client = make_client(emu_settings(emulator, default_country="GB"))
    client.calls.create(ALICE, to="020 7946 0000", check_agent=False)
    client.calls.create(ALICE, to="415 555 0100", default_country="US", check_agent=False)
    numbers = [c["body"]["phoneNumber"] for c in emulator.calls_created()]
    assert sorted(numbers) == ["+14155550100", "+442079460000"]


@pytest.mark.parametrize(
    ("to", "caller_id"),
    [("not a number", None), ("+1 415 555", None), ("+14155550100", "12"), ("", None)],
)
def test_invalid_numbers_are_refused_before_anything_is_sent(
    emulator: EmulatorServer, make_client: MakeClient, to: str, caller_id: str | None
) -> None:
    client = make_client()
    before = emulator.request_counts()["total"]
    with pytest.raises(InvalidPhoneNumberError) as caught:
        client.calls.create("alice@example.com", to=to, caller_id=caller_id)
    assert "E.164" in str(caught.value)
    assert emulator.request_counts()["total"] == before
    assert emulator.calls_created() == []


def test_bad_attributes_are_refused_before_anything_is_sent(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    with pytest.raises(InputError, match="attributes"):
        make_client().calls.create(ALICE, to="+14155550100", attributes={"n": 1})
    assert emulator.request_counts()["total"] == 0


def test_user_token_uses_the_conversations_calls_route(
    emulator: EmulatorServer, make_client: MakeClient, tmp_path: Path
) -> None:
    token = _user_token(emulator, tmp_path)
    client = make_client(
        emu_settings(emulator, client_id=None, client_secret=None), access_token=token
    )
    assert client.user_token
    assert client.calls.route == "user"
    created = client.calls.create("me", to="+14155550100", caller_id="+14155550199")
    created_again = client.calls.create("alice@example.com", to="+14155550102")
    calls = emulator.calls_created()
    assert [c["id"] for c in calls] == [created.id, created_again.id]
    assert {c["userId"] for c in calls} == {ALICE}
    assert calls[0]["body"] == {"phoneNumber": "+14155550100", "callerId": "+14155550199"}
    assert route_count(emulator, USER_ROUTE) == 2
    assert route_count(emulator, ON_BEHALF_ROUTE) == 0


def test_user_token_refuses_to_ring_someone_else(
    emulator: EmulatorServer, make_client: MakeClient, tmp_path: Path
) -> None:
    token = _user_token(emulator, tmp_path)
    client = make_client(
        emu_settings(emulator, client_id=None, client_secret=None), access_token=token
    )
    with pytest.raises(InputError, match="token owner"):
        client.calls.create("bob@example.com", to="+14155550100")
    assert emulator.calls_created() == []
    assert route_count(emulator, USER_ROUTE) == 0


def test_client_credentials_on_the_user_route_get_not_a_user(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    client = make_client(emu_settings(emulator, call_route="user"))
    with pytest.raises(BadRequestError) as caught:
        client.calls.create("me", to="+14155550100")
    assert caught.value.code == "not.a.user"
    assert "call_route" in str(caught.value)
    with pytest.raises(BadRequestError) as direct:
        client.transport.request(
            "POST", "/api/v2/conversations/calls", json={"phoneNumber": "+1415"}, idempotent=False
        )
    assert direct.value.code == "not.a.user"
    assert emulator.calls_created() == []


def test_get_and_hang_up(emulator: EmulatorServer, make_client: MakeClient) -> None:
    client = make_client()
    created = client.calls.create("alice@example.com", to="+14155550100")
    conversation = client.calls.get(created.id)
    assert isinstance(conversation, CallConversation)
    assert conversation.id == created.id
    agent = conversation.agent_participant(ALICE)
    assert agent is not None
    assert not conversation.is_over
    client.calls.hang_up(created.id)
    ended = client.calls.get(created.id)
    assert ended.is_over
    assert all(p.state in {"disconnected", "terminated"} for p in ended.participants)


def test_hang_up_one_participant(emulator: EmulatorServer, make_client: MakeClient) -> None:
    client = make_client()
    created = client.calls.create(ALICE, to="+14155550100", check_agent=False)
    agent = client.calls.get(created.id).agent_participant()
    assert agent is not None
    client.calls.hang_up(created.id, participant_id=agent.id)
    assert (
        route_count(
            emulator,
            "PATCH /api/v2/conversations/calls/{conversationId}/participants/{participantId}",
        )
        == 1
    )
    leg = client.calls.get(created.id).agent_participant()
    assert leg is not None
    assert leg.is_over


def test_dry_run_builds_the_exact_request_and_dials_nothing(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    client = make_client()
    prepared = client.calls.build_create_request(
        "alice@example.com", to="415-555-0100", caller_id="+14155550199"
    )
    assert prepared.method == "POST"
    assert prepared.url == f"{emulator.base_url}/api/v2/conversations/calls/user/{ALICE}"
    assert prepared.body == {"phoneNumber": "+14155550100", "callerId": "+14155550199"}
    assert prepared.headers["Authorization"] == "Bearer ***"
    assert prepared.headers["Content-Type"] == "application/json"
    assert prepared.headers["Content-Length"] == str(
        len(b'{"phoneNumber":"+14155550100","callerId":"+14155550199"}')
    )
    assert emulator.calls_created() == []
    assert route_count(emulator, ON_BEHALF_ROUTE) == 0
    unresolved = client.calls.build_create_request(
        "bob@example.com", to="+14155550100", resolve=False
    )
    assert unresolved.url == f"{emulator.base_url}/api/v2/conversations/calls/user/{{userId}}"
    assert route_count(emulator, "POST /api/v2/users/search") == 1


def test_debug_logs_never_show_the_token(
    emulator: EmulatorServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    with caplog.at_level(logging.DEBUG, logger="gcdial"):
        client.calls.create("alice@example.com", to="+14155550100")
    assert isinstance(client.auth, ClientCredentialsAuth)
    token = client.auth.token()
    assert "POST" in caplog.text
    assert "Bearer ***" in caplog.text
    assert token not in caplog.text
    assert emulator.client_secret not in caplog.text
