"""Run a real campaign (runner, SQLite journal, emulator) with trouble alongside; check it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcdial.campaign.journal import ContactRecord, ContactStatus, Journal
from gcdial.campaign.runner import CampaignRunner, RunResult
from gcdial.campaign.settings import CampaignSettings
from gcdial.emulator import EmulatorServer

from .support import QuickTime, async_client, created_numbers, duplicates

AGENTS = ("alice@example.com", "bob@example.com", "carol@example.com")
Trouble = Callable[[], Coroutine[Any, Any, None]]
# The built-in fixture's client without the analytics permission.
NO_ANALYTICS_ID = "sandbox-no-analytics"
NO_ANALYTICS_SECRET = "sandbox-no-analytics-secret"


@dataclass
class CampaignRun:
    """What a run returned and what its journal says afterwards."""

    result: RunResult
    contacts: list[ContactRecord]
    in_flight: int


async def run_campaign(
    emulator: EmulatorServer,
    folder: Path,
    numbers: Sequence[str],
    *,
    trouble: Trouble | None = None,
    agents: Sequence[str] = AGENTS,
    analytics: bool = True,
) -> CampaignRun:
    """Dial ``numbers`` once each (all day window, one attempt) while ``trouble`` runs.

    Ambiguous creates are resolved with a short settle time (3 s: longer than the emulator's
    ingestion delay at the test speed) and, without ``analytics``, by a client that lacks the
    analytics permission (live evidence only: a create that did nothing stays unknown).
    """
    csv_path = folder / "contacts.csv"
    csv_path.write_text("phone\n" + "\n".join(numbers) + "\n")
    journal_path = folder / "contacts.gcdial.sqlite"
    settings = CampaignSettings(
        csv_path=str(csv_path), agents=tuple(agents), window="00:00-24:00", max_attempts=1
    )
    fields: dict[str, Any] = {"analytics_settle_s": 3.0}
    if not analytics:
        fields.update(client_id=NO_ANALYTICS_ID, client_secret=NO_ANALYTICS_SECRET)
    async with async_client(emulator, QuickTime(), **fields) as client:
        runner = CampaignRunner(
            settings,
            client,
            journal_path=journal_path,
            progress_interval_s=None,
            resolve_timeout_s=6.0,
        )
        side = asyncio.create_task(trouble()) if trouble is not None else None
        try:
            result = await asyncio.wait_for(runner.run(), timeout=40)
        finally:
            if side is not None:
                await side
    with Journal.open(journal_path, read_only=True) as journal:
        contacts = list(journal.contacts.all())
        in_flight = len(journal.attempts.in_flight())
    return CampaignRun(result, contacts, in_flight)


def lost_contacts(emulator: EmulatorServer, numbers: Sequence[str], run: CampaignRun) -> list[str]:
    """Contacts the campaign lost track of: missing, in flight, or 'done' without a call."""
    created = created_numbers(emulator)
    by_phone = {c.phone: c for c in run.contacts}
    lost = [n for n in numbers if n not in by_phone]
    for contact in run.contacts:
        if contact.status is ContactStatus.ACTIVE:
            lost.append(f"{contact.phone}: still active")
        elif contact.status is ContactStatus.DONE and created[contact.phone] != 1:
            lost.append(f"{contact.phone}: done, but {created[contact.phone]} calls exist")
        elif contact.status is ContactStatus.PENDING and created[contact.phone]:
            lost.append(f"{contact.phone}: pending again, yet its call was placed")
    if run.in_flight:
        lost.append(f"{run.in_flight} attempt(s) left in flight")
    return lost


def check_campaign(emulator: EmulatorServer, numbers: Sequence[str], run: CampaignRun) -> None:
    assert duplicates(emulator) == {}, "a customer was rung twice"
    assert lost_contacts(emulator, numbers, run) == []
