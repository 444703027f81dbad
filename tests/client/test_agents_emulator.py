"""Agents: lookup by id or email and the readiness check, against the emulator's fixture agents."""

from __future__ import annotations

import pytest

from gcdial.emulator import EmulatorServer
from gcdial.errors import AgentNotReadyError, BadRequestError, InputError

from .conftest import MakeClient
from .support import ALICE, DAVE, ERIN, ON_BEHALF_ROUTE, route_count


def test_agent_by_email_and_by_id(make_client: MakeClient) -> None:
    agents = make_client().agents
    by_email = agents.get("Alice@Example.com")
    by_id = agents.get(ALICE)
    assert by_email.id == by_id.id == ALICE
    assert by_id.email == "alice@example.com"
    assert by_id.is_active
    assert by_id.station is not None
    assert by_id.station.dialing_station is not None
    assert by_id.presence is not None
    assert by_id.presence.system_presence == "AVAILABLE"


def test_station_and_presence_endpoints(make_client: MakeClient) -> None:
    agents = make_client().agents
    assert agents.station(ALICE).dialing_station is not None
    assert agents.station(DAVE).dialing_station is None
    assert agents.presence(ALICE).system_presence == "AVAILABLE"


def test_ready_agent_reports_presence(make_client: MakeClient) -> None:
    agents = make_client().agents
    ready = agents.check("alice@example.com")
    assert ready.agent.id == ALICE
    assert ready.station.id is not None
    assert ready.presence == "AVAILABLE"
    assert ready.available
    assert ready.notes == ()
    busy = agents.check("carol@example.com")
    assert busy.presence == "BUSY"
    assert not busy.available
    assert not busy.ready
    assert busy.verdict.reason == "presence"
    assert "BUSY" in (busy.verdict.problem or "")


def test_agent_without_station_is_refused_with_the_fix(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    client = make_client()
    with pytest.raises(AgentNotReadyError) as caught:
        client.calls.create("dave@example.com", to="+14155550100")
    error = caught.value
    assert error.reason == "no_station"
    text = str(error)
    assert "Dave" in text or "dave@example.com" in text
    assert "Admin > Telephony > Stations" in text
    assert "Admin > People" in text
    assert "no.user.station" in text
    assert route_count(emulator, ON_BEHALF_ROUTE) == 0
    assert emulator.calls_created() == []


def test_inactive_agent_is_refused(emulator: EmulatorServer, make_client: MakeClient) -> None:
    with pytest.raises(AgentNotReadyError) as caught:
        make_client().calls.create(ERIN, to="+14155550100")
    assert caught.value.reason == "inactive"
    assert "Admin > People" in str(caught.value)
    assert "inactive" in str(caught.value)
    assert emulator.calls_created() == []


@pytest.mark.parametrize("agent", ["nobody@example.com", "99999999-9999-4999-8999-999999999999"])
def test_unknown_agent_is_refused(
    emulator: EmulatorServer, make_client: MakeClient, agent: str
) -> None:
    with pytest.raises(AgentNotReadyError) as caught:
        make_client().calls.create(agent, to="+14155550100")
    assert caught.value.reason == "unknown"
    assert agent in str(caught.value)
    assert "GENESYSCLOUD_REGION" in str(caught.value)
    assert emulator.calls_created() == []


def test_skipping_the_check_lets_genesys_answer(
    emulator: EmulatorServer, make_client: MakeClient
) -> None:
    with pytest.raises(BadRequestError) as caught:
        make_client().calls.create(DAVE, to="+14155550100", check_agent=False)
    assert caught.value.code == "conversation.error.no.user.station"
    assert "station" in str(caught.value)
    assert caught.value.context_id is not None
    assert route_count(emulator, ON_BEHALF_ROUTE) == 1


@pytest.mark.parametrize("agent", ["../users/me", "alice smith", "a/b"])
def test_malformed_agent_is_an_input_error(
    emulator: EmulatorServer, make_client: MakeClient, agent: str
) -> None:
    with pytest.raises(InputError):
        make_client().agents.get(agent)
    assert emulator.request_counts()["total"] == 0
