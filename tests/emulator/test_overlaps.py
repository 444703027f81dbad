"""The overlap ledger counts every create-call for an agent whose phone had a live call, and
``busy_agent_calls`` (UNCONFIRMED on real Genesys) decides whether such a call is created."""

from __future__ import annotations

from typing import Any

import pytest

from gcdial.client import Client
from gcdial.emulator import EmulatorServer
from gcdial.errors import BadRequestError

ALICE = "alice@example.com"


def _client(emu: EmulatorServer) -> Client:
    return Client(base_url=emu.base_url, client_id=emu.client_id, client_secret=emu.client_secret)


def test_a_second_call_for_a_busy_agent_is_created_and_counted(make_emulator: Any) -> None:
    emu: EmulatorServer = make_emulator(speed=1)
    with _client(emu) as client:
        client.calls.create(ALICE, to="+14155550100")
        client.calls.create("bob@example.com", to="+14155550101")
        assert emu.overlaps()["total"] == 0
        client.calls.create(ALICE, to="+14155550102")
    ledger = emu.overlaps()
    assert ledger["total"] == 1
    assert ledger["byAgent"] == {ALICE: 1}
    assert ledger["overlaps"][0]["rejected"] is False
    assert len(emu.calls_created()) == 3


def test_reject_mode_refuses_it_and_still_counts_it(make_emulator: Any) -> None:
    emu: EmulatorServer = make_emulator(speed=1, busy_agent_calls="reject")
    with _client(emu) as client:
        client.calls.create(ALICE, to="+14155550100")
        with pytest.raises(BadRequestError, match="already has a call"):
            client.calls.create(ALICE, to="+14155550102")
    assert emu.overlaps()["overlaps"][0]["rejected"] is True
    assert len(emu.calls_created()) == 1
