"""The library's dial opts in to the gate (``dial(..., gate=SingleCallGate(...))``): the calling
rules and the agent's row refuse before the POST; without ``gate=`` nothing changes.

Against the emulator, with a real SQLite leases file; the night is a window that excludes the
customer's current local hour (no clock is faked).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gcdial.calls import CallParams
from gcdial.campaign.rules import CallingWindow, DoNotCallList, Rules
from gcdial.client import AsyncClient, Client
from gcdial.emulator import EmulatorServer
from gcdial.errors import AgentNotReadyError, CallRulesError
from gcdial.gate import SingleCallGate
from gcdial.local_leases import LocalAgentLeases

from .support import ALICE, BOB, emu_settings

ZONE = "America/Los_Angeles"


def _closed() -> CallingWindow:
    local = datetime.now(UTC).astimezone(ZoneInfo(ZONE))
    start = (local + timedelta(hours=3)).replace(minute=0)
    return CallingWindow.parse(f"{start:%H}:00-{start + timedelta(hours=2):%H}:00")


def test_the_rules_and_the_agent_row_refuse_a_library_dial_before_the_post(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.set_speed(1)  # +14155550149 talks for 59 s: live while the next dial is tried
    leases = LocalAgentLeases(tmp_path / "rows.sqlite3", emulator.base_url, "lib", ttl_s=60)
    try:
        with Client(emu_settings(emulator)) as client:
            night = SingleCallGate(Rules(window=_closed()), leases)
            with pytest.raises(CallRulesError) as refused:
                client.dial(ALICE, CallParams(to="+14155550100"), gate=night)
            assert refused.value.rule == "calling_window"
            assert refused.value.local_time is not None
            assert ZONE in refused.value.local_time
            listed = Rules(
                window=CallingWindow.parse("00:00-24:00"),
                dnc=DoNotCallList(frozenset({"+14155550100"})),
            )
            with pytest.raises(CallRulesError) as dnc:
                client.dial(ALICE, CallParams(to="+14155550100"), gate=SingleCallGate(listed))
            assert dnc.value.rule == "do_not_call"
            assert emulator.calls_created() == []

            first = client.dial(
                ALICE, CallParams(to="+14155550149"), gate=SingleCallGate(None, leases)
            )
            assert first.conversation_id is not None
            with pytest.raises(AgentNotReadyError) as busy:
                client.dial(ALICE, CallParams(to="+14155550101"), gate=SingleCallGate(None, leases))
            assert busy.value.reason == "agent_busy"
            assert first.conversation_id in busy.value.message
            assert len(emulator.calls_created()) == 1
            # Without gate= the library dials as before (the caller opted out).
            second = client.dial(BOB, CallParams(to="+14155550101"))
            assert second.conversation_id is not None
            client.calls.hang_up(first.conversation_id)
            client.calls.hang_up(second.conversation_id)
    finally:
        leases.close()


async def test_a_followed_library_dial_frees_the_agent_at_the_end(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    leases = LocalAgentLeases(tmp_path / "rows.sqlite3", emulator.base_url, "lib", ttl_s=60)
    try:
        async with AsyncClient(emu_settings(emulator)) as client:
            gate = SingleCallGate(None, leases)
            handle = await client.dial(
                ALICE, CallParams(to="+14155550100"), follow=True, timeout_s=60, gate=gate
            )
            assert handle.outcome is not None
        assert leases.claim_now(ALICE, "next") is None  # released: free again
    finally:
        leases.close()
