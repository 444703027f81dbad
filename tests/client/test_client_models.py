"""Models: strict requests with the real wire names, tolerant responses."""

from __future__ import annotations

import pydantic
import pytest

from gcdial.models import (
    CallConversation,
    CallCreated,
    CreateCallRequest,
    Destination,
    ParticipantState,
    Presence,
    SystemPresence,
    User,
    UserSearchResults,
)

# The wire names of CreateCallRequest, as the official SDK's attribute_map spells them.
_WIRE_NAMES = {
    "phoneNumber",
    "callerId",
    "callerIdName",
    "callFromQueueId",
    "callQueueId",
    "callUserId",
    "priority",
    "attributes",
    "languageId",
    "routingSkillsIds",
    "routingSkillExpression",
    "conversationIds",
    "participants",
    "uuiData",
    "externalContactId",
    "label",
}


def test_create_call_request_uses_the_real_wire_names() -> None:
    aliases = {f.alias for f in CreateCallRequest.model_fields.values()}
    assert aliases == _WIRE_NAMES


def test_create_call_request_serialises_only_what_is_set() -> None:
    request = CreateCallRequest(
        phone_number="+14155550100",
        caller_id="+14155550199",
        call_from_queue_id="q-1",
        attributes={"crm": "42"},
        uui_data="abc",
    )
    assert request.to_wire() == {
        "phoneNumber": "+14155550100",
        "callerId": "+14155550199",
        "callFromQueueId": "q-1",
        "attributes": {"crm": "42"},
        "uuiData": "abc",
    }
    by_alias = CreateCallRequest(phoneNumber="+14155550100")  # type: ignore[call-arg]
    assert by_alias.to_wire() == {"phoneNumber": "+14155550100"}


def test_create_call_request_refuses_tutorial_fields() -> None:
    with pytest.raises(pydantic.ValidationError, match="toType"):
        CreateCallRequest.model_validate({"phoneNumber": "+14155550100", "toType": "phone"})


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"caller_id": "+14155550199"},
        {"phone_number": "+14155550100", "call_user_id": "u-1"},
        {"call_queue_id": "q", "participants": [Destination(address="+14155550100")]},
    ],
)
def test_create_call_request_needs_exactly_one_destination(fields: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError, match="exactly one destination"):
        CreateCallRequest.model_validate(fields)


def test_call_created_keeps_unknown_fields() -> None:
    created = CallCreated.model_validate({"id": "c-1", "selfUri": "/x", "brandNew": True})
    assert created.id == "c-1"
    assert created.self_uri == "/x"
    assert created.model_extra == {"brandNew": True}


_CONVERSATION = {
    "id": "c-1",
    "participants": [
        {
            "id": "p2",
            "purpose": "external",
            "state": "dialing",
            "direction": "outbound",
            "address": "tel:+13175551234",
            "startTime": "2026-11-25T08:49:03.123Z",
            "someNewField": 1,
        },
        {
            "id": "p1",
            "purpose": "agent",
            "state": "connected",
            "direction": "outbound",
            "user": {"id": "u-1", "name": "Alice"},
        },
    ],
    "recordingState": "none",
    "selfUri": "/api/v2/conversations/calls/c-1",
}


def test_conversation_finds_legs_whatever_their_order() -> None:
    conversation = CallConversation.model_validate(_CONVERSATION)
    agent = conversation.agent_participant()
    customer = conversation.customer_participant()
    assert agent is not None
    assert agent.id == "p1"
    assert conversation.agent_participant("u-1") is agent
    assert conversation.agent_participant("u-2") is None
    assert customer is not None
    assert customer.address == "tel:+13175551234"
    assert customer.start_time is not None
    assert customer.start_time.microsecond == 123000
    assert not conversation.is_over


def test_customer_purpose_may_be_customer() -> None:
    data = {"id": "c", "participants": [{"id": "p", "purpose": "customer", "state": "alerting"}]}
    customer = CallConversation.model_validate(data).customer_participant()
    assert customer is not None
    assert customer.id == "p"


def test_conversation_is_over_when_every_leg_ended_and_keeps_unknown_states() -> None:
    data = {
        "id": "c",
        "participants": [
            {"id": "a", "purpose": "agent", "state": "disconnected", "disconnectType": "peer"},
            {"id": "b", "purpose": "external", "state": "terminated", "errorInfo": {"code": "x"}},
        ],
    }
    assert CallConversation.model_validate(data).is_over
    data["participants"][0]["state"] = "quantum"  # type: ignore[index]
    conversation = CallConversation.model_validate(data)
    assert not conversation.is_over
    assert conversation.participants[0].state == "quantum"
    assert not CallConversation(id="empty").is_over
    assert ParticipantState.CONNECTED == "connected"


def test_user_with_expansions() -> None:
    user = User.model_validate(
        {
            "id": "u-1",
            "name": "Alice",
            "email": "alice@example.com",
            "state": "active",
            "presence": {"presenceDefinition": {"id": "p", "systemPresence": "Available"}},
            "routingStatus": {"status": "IDLE"},
            "station": {"associatedStation": {"id": "s-1", "name": "Desk"}},
        }
    )
    assert user.is_active
    assert user.presence is not None
    assert user.presence.system_presence == SystemPresence.AVAILABLE
    assert user.station is not None
    assert user.station.dialing_station is not None
    assert user.routing_status is not None
    assert user.routing_status.status == "IDLE"
    assert not User(id="x", state="inactive").is_active
    assert User(id="x").label == "x"


def test_presence_case_insensitive() -> None:
    presence = Presence.model_validate({"presenceDefinition": {"systemPresence": "on_queue"}})
    assert presence.system_presence == "ON_QUEUE"
    assert SystemPresence.same("Available", "AVAILABLE")
    assert not SystemPresence.same(None, "AVAILABLE")


def test_search_results() -> None:
    results = UserSearchResults.model_validate(
        {"total": 1, "pageCount": 1, "results": [{"id": "u", "email": "a@b.c"}]}
    )
    assert [u.email for u in results.results] == ["a@b.c"]
