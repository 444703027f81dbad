"""A campaign that acts on wrap-up codes, against the emulator's after-call work.

200 contacts, every wrap-up kind (the third digit from the end of a number picks its wrap-up in
the fixture below): do-not-call numbers land on the DNC list and are never dialed again, callbacks
are dialed at the time in the notes and inside the calling window, wrong numbers are not retried,
and the report's disposition counts equal the emulator's ledger. Only time is faked: the
emulator's accelerated clock drives the calls and the runner's rules alike.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from campaign_support import agent, calls_per_number, number, write_csv

from gcdial.campaign.journal import ContactStatus, Journal
from gcdial.campaign.plan import plan
from gcdial.campaign.report import campaign_status, report_rows
from gcdial.campaign.rules import CallingWindow
from gcdial.campaign.runner import CampaignRunner, StopReason
from gcdial.campaign.settings import CampaignSettings
from gcdial.campaign.wrapup_rules import callback_time
from gcdial.client import AsyncClient
from gcdial.emulator import EmulatorConfig, EmulatorServer

SPEED = 2000.0
QUEUE = "9ee00001-0000-4000-8000-000000000001"
CODES = {
    "Sale": "c0de0001-0000-4000-8000-000000000001",
    "Callback requested": "c0de0002-0000-4000-8000-000000000002",
    "Wrong number": "c0de0003-0000-4000-8000-000000000003",
    "Do not call": "c0de0004-0000-4000-8000-000000000004",
    "Not interested": "c0de0005-0000-4000-8000-000000000005",
    "Try later": "c0de0006-0000-4000-8000-000000000006",
    "Call me tonight": "c0de0007-0000-4000-8000-000000000007",
}
# third digit from the end -> the agent's wrap-up
KINDS = {
    0: "Sale",
    1: "Callback requested",  # 30 minutes later: inside the window
    2: "Call me tonight",  # at the time in the list, when the window is closed: at its opening
    3: "Wrong number",
    4: "Do not call",
    5: None,  # never arrives
    6: "Not interested",  # unmapped: the default
    7: "Try later",  # retry after 2h
    8: "Sale",
    9: "Do not call",
}
RULES = {
    "default": "done",
    "codes": {
        "Sale": "done",
        "Callback requested": "callback",
        "Call me tonight": "callback at notes or attribute callback_at",
        "Wrong number": "wrong number",
        "do not call": "dnc",
        CODES["Try later"]: "retry after 2h",
    },
}


def fixture(path: Path) -> Path:
    rules: list[dict[str, Any]] = [
        {"match": "*1??", "code": "Callback requested", "notes": "at {callback}"},
        {"match": "*2??", "code": "Call me tonight"},
        {"match": "*3??", "code": "Wrong number"},
        {"match": "*4??", "code": "Do not call", "notes": "asked not to be called"},
        {"match": "*9??", "code": "Do not call"},
        {"match": "*5??", "never": True},
        {"match": "*6??", "code": "Not interested"},
        {"match": "*7??", "code": "Try later"},
        {"match": "*", "code": "Sale", "notes": "order placed"},
    ]
    for rule in rules:
        if rule.get("match") == "*1??":
            rule["callback_in_s"] = 1800
    path.write_text(
        json.dumps(
            {
                "clients": [
                    {"id": "w-client", "secret": "w-secret", "grant": "client_credentials"}
                ],
                "generate_agents": {"count": 8, "email_domain": "camp.example.com"},
                "wrapup_codes": [{"id": cid, "name": name} for name, cid in CODES.items()],
                "queues": [{"id": QUEUE, "name": "Sales", "wrapup_codes": list(CODES)}],
                "wrapups": rules,
            }
        )
    )
    return path


@pytest.fixture
def emu(tmp_path: Path) -> Any:
    config = EmulatorConfig(
        speed=SPEED,
        admin=True,
        fixture=fixture(tmp_path / "org.json"),
        rate_limit_per_minute=100_000,
        analytics_ingestion_delay_s=0,
    )
    with EmulatorServer(config) as server:
        yield server


class SimTime:
    """The emulator's simulated clock, for the runner's rules (as the sandbox CLI does)."""

    def __init__(self, emulator: EmulatorServer) -> None:
        self._clock = emulator.state.clock

    def __call__(self) -> datetime:
        return datetime.fromisoformat(self._clock.iso())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) / self._clock.speed)


def window_around(now: datetime) -> str:
    """A window open now and for 5 hours, closed for the hour after (UTC)."""
    opens = (now + timedelta(hours=6)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    closes = (now + timedelta(hours=5)).replace(second=0, microsecond=0)
    return f"{opens:%H:%M}-{closes:%H:%M}"


async def test_a_campaign_acts_on_every_wrapup_kind_and_matches_the_ledger(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    clock = SimTime(emu)
    start = clock()
    window = window_around(start)
    phones = [number("415", last, exchange) for exchange in range(10) for last in range(20)]
    tonight = f"{start + timedelta(hours=5, minutes=30):%H:%M}"  # the window is closed then
    rows = [{"phone": p, "timezone": "UTC", "callback_at": tonight} for p in phones]
    csv = write_csv(tmp_path / "c.csv", rows, ["phone", "timezone", "callback_at"])
    dnc = tmp_path / "dnc.txt"
    dnc.write_text("# our list\n+14155559999\n")
    settings = CampaignSettings(
        csv_path=str(csv),
        agents=tuple(agent(n) for n in range(1, 9)),
        window=window,
        max_attempts=2,
        dnc_path=str(dnc),
        queue_id=QUEUE,
        wrapup_rules=RULES,
        wrapup_timeout_s=0.2,
    )
    async with AsyncClient(
        base_url=emu.base_url, client_id=emu.client_id, client_secret=emu.client_secret
    ) as client:
        runner = CampaignRunner(
            settings,
            client,
            journal_path=tmp_path / "c.db",
            clock=clock,
            sleep=clock.sleep,
            progress_interval_s=None,
        )
        result = await asyncio.wait_for(runner.run(), timeout=120)
    assert result.reason is StopReason.FINISHED, result
    assert result.error is None

    created = calls_per_number(emu)
    kind = {p: KINDS[int(p[-3])] for p in phones}
    expected_calls = {
        "Sale": 1,
        "Wrong number": 1,  # not retried
        "Do not call": 1,  # never dialed again
        None: 1,
        "Not interested": 1,  # the default: done
        "Callback requested": 2,  # called back once, then --max-attempts binds
        "Call me tonight": 2,
        "Try later": 2,
    }
    for phone in phones:
        assert created[phone] == expected_calls[kind[phone]], (phone, kind[phone])

    with Journal.open(tmp_path / "c.db", read_only=True) as journal:
        status = campaign_status(journal)
        report = {row["phone"]: row for row in report_rows(journal)}
        attempts = journal.attempts.all()
        contacts = {c.id: c for c in journal.contacts.all()}
        journal_dnc = journal.attempts.dnc_numbers()
        missing = journal.attempts.missing_wrapups()

    # The report's disposition counts are the emulator's ledger, exactly.
    ledger = emu.wrapups()
    assert status.dispositions == ledger["byCode"]
    assert sum(status.dispositions.values()) == ledger["total"]
    assert status.wrapups_missing == ledger["pending"] == 20
    assert {contacts[a.contact_id].phone for a in missing} == {p for p in phones if kind[p] is None}

    # Do not call: in the journal's list and the DNC file, dialed once.
    dnc_phones = {p for p in phones if kind[p] == "Do not call"}
    assert journal_dnc == dnc_phones
    lines = dnc.read_text().splitlines()
    assert lines[:2] == ["# our list", "+14155559999"]
    assert {line.split()[0] for line in lines[2:]} == dnc_phones
    for phone in dnc_phones:
        assert report[phone]["wrapup_action"] == "dnc"
        assert report[phone]["status"] == ContactStatus.DONE

    for phone in phones:
        row = report[phone]
        if kind[phone] == "Wrong number":
            assert row["wrapup_action"] == "wrong_number"
        if kind[phone] == "Not interested":
            assert (row["wrapup_name"], row["wrapup_action"]) == ("Not interested", "done")

    # Callbacks: each second call came at (or after) the time in the notes, and in the window.
    calling = CallingWindow.parse(window)
    by_contact: dict[int, list[Any]] = {}
    for attempt in attempts:
        by_contact.setdefault(attempt.contact_id, []).append(attempt)
    checked = Counter[str]()
    for contact_id, tries in by_contact.items():
        label = kind[contacts[contact_id].phone]
        if label not in ("Callback requested", "Call me tonight"):
            continue
        first, second = tries
        assert first.wrapup is not None
        written = first.wrapup.notes if label == "Callback requested" else tonight
        asked = callback_time(written, "UTC", first.created_at)
        assert asked is not None
        assert second.created_at >= asked - timedelta(seconds=1)
        assert calling.contains(second.created_at.time()), (second.created_at, window)
        if label == "Call me tonight":
            # Asked for an hour when the window is closed: dialed once it opened, not before.
            assert not calling.contains(asked.time())
        checked[label] += 1
    assert checked == {"Callback requested": 20, "Call me tonight": 20}

    # A resume dials nobody again; a new campaign with the same DNC file skips the dnc numbers.
    before = len(emu.calls_created())
    async with AsyncClient(
        base_url=emu.base_url, client_id=emu.client_id, client_secret=emu.client_secret
    ) as client:
        again = await CampaignRunner(
            settings,
            client,
            journal_path=tmp_path / "c.db",
            clock=clock,
            sleep=clock.sleep,
            progress_interval_s=None,
        ).run()
    assert again.reason is StopReason.FINISHED
    assert len(emu.calls_created()) == before
    fresh = CampaignSettings(csv_path=str(csv), window="00:00-24:00", dnc_path=str(dnc))
    skipped = {
        line.phone
        for line in plan(fresh, now=clock(), journal_path=tmp_path / "new.db")
        if line.outcome == "do_not_call"
    }
    assert skipped == dnc_phones
