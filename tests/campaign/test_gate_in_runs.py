"""A campaign never dials an agent it reports as not ready: left out at the start when not ready
then, skipped at dispatch (and tried again later) when they stop being ready during the run.

Real emulator, real HTTP; the presence is changed in the emulator as the agent would."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from campaign_support import SPEED, agent, events_of, number, write_csv, write_fixture

from gcdial.campaign.progress import CampaignEvent
from gcdial.campaign.runner import CampaignRunner, StopReason
from gcdial.campaign.settings import CampaignSettings
from gcdial.client import AsyncClient
from gcdial.emulator import EmulatorServer
from gcdial.gate import ReadinessGate


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    from gcdial.emulator import EmulatorConfig

    fixture = write_fixture(tmp_path_factory.mktemp("org") / "org.json", agents=3)
    with EmulatorServer(EmulatorConfig(speed=SPEED, admin=True, fixture=fixture)) as server:
        yield server


@pytest.fixture
def emu(org: EmulatorServer) -> EmulatorServer:
    org.reset()
    org.set_speed(SPEED)
    return org


@pytest.fixture
async def client(emu: EmulatorServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        base_url=emu.base_url, client_id=emu.client_id, client_secret=emu.client_secret
    ) as ac:
        yield ac


async def _set_presence(emu: EmulatorServer, client: AsyncClient, email: str, name: str) -> None:
    user = await client.agents.get(email)
    async with httpx.AsyncClient() as http:
        token = (
            await http.post(
                emu.base_url + "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(emu.client_id, emu.client_secret),
            )
        ).json()["access_token"]
        changed = await http.patch(
            f"{emu.base_url}/api/v2/users/{user.id}/presences/purecloud",
            json={"presenceDefinition": {"systemPresence": name}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert changed.status_code == 200, changed.text


def _settings(csv: Path, agents: list[str]) -> CampaignSettings:
    return CampaignSettings(
        csv_path=str(csv), agents=tuple(agents), window="00:00-24:00", max_attempts=1
    )


def _calls_by_agent(emu: EmulatorServer, client_ids: dict[str, str]) -> Counter[str]:
    emails = {v: k for k, v in client_ids.items()}
    return Counter(emails.get(c["userId"], c["userId"]) for c in emu.calls_created())


async def test_a_busy_agent_is_left_out_with_the_reason_agent_show_gives(
    tmp_path: Path, emu: EmulatorServer, client: AsyncClient
) -> None:
    await _set_presence(emu, client, agent(2), "BUSY")
    csv = write_csv(tmp_path / "c.csv", [{"phone": number("415", n)} for n in range(6)], ["phone"])
    events: list[CampaignEvent] = []
    runner = CampaignRunner(
        _settings(csv, [agent(1), agent(2)]),
        client,
        journal_path=tmp_path / "c.db",
        observer=events.append,
        progress_interval_s=None,
    )
    result = await asyncio.wait_for(runner.run(), timeout=60)
    assert result.reason is StopReason.FINISHED
    assert [(e.agent, e.reason) for e in result.excluded] == [(agent(2), "presence")]
    ids = {a: (await client.agents.get(a)).id for a in (agent(1), agent(2))}
    assert _calls_by_agent(emu, ids) == Counter({agent(1): 6})
    assert emu.overlaps()["total"] == 0
    excluded = events_of("agent_excluded", events)
    assert excluded[0].data["reason"] == "presence"


async def test_an_agent_turning_busy_mid_run_is_skipped_then_tried_again(
    tmp_path: Path, emu: EmulatorServer, client: AsyncClient
) -> None:
    csv = write_csv(tmp_path / "c.csv", [{"phone": number("415", n)} for n in range(10)], ["phone"])
    events: list[CampaignEvent] = []
    flipped = asyncio.Event()
    tasks: list[asyncio.Task[Any]] = []

    def observe(event: CampaignEvent) -> None:
        events.append(event)
        if event.kind == "placed" and not flipped.is_set():
            flipped.set()
            tasks.append(asyncio.ensure_future(_set_presence(emu, client, agent(2), "BUSY")))

    runner = CampaignRunner(
        _settings(csv, [agent(1), agent(2)]),
        client,
        journal_path=tmp_path / "c.db",
        observer=observe,
        progress_interval_s=None,
        # Fresh at every dispatch, so the test needs no wait for a cached verdict to age.
        gate=ReadinessGate(client.agents.check, ttl_s=0.0),
    )
    result = await asyncio.wait_for(runner.run(), timeout=60)
    await asyncio.gather(*tasks)
    assert result.reason is StopReason.FINISHED
    skipped = events_of("agent_skipped", events)
    assert skipped, [e.kind for e in events]
    assert skipped[0].data["agent"] == agent(2)
    assert skipped[0].data["reason"] == "presence"
    # Only a call admitted before the flip may have gone through agent 2: after it, none.
    first_skip = events.index(skipped[0])
    later = [e for e in events[first_skip:] if e.kind == "placed" and e.data["agent"] == agent(2)]
    assert later == []
    placed = Counter(e.data["agent"] for e in events_of("placed", events))
    assert placed[agent(2)] <= 2
    assert emu.overlaps()["total"] == 0
