"""Campaigns under 5xx bursts, 429 storms, dropped answers, token loss and socket drops.

(Kill and resume belong to the campaign's own tests.) After each run: no number rung twice, and
no contact lost: every contact is in the journal, none left in flight, a contact marked done has
exactly one call, and one whose outcome is unknown was rung at most once and waits for a human.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gcdial.campaign.journal import ContactStatus
from gcdial.emulator import EmulatorServer

from .campaign_support import check_campaign, run_campaign
from .support import fresh_number

CONTACTS = 9


async def later(delay: float, action: Callable[[], object], *, times: int = 1) -> None:
    for _ in range(times):
        await asyncio.sleep(delay)
        await asyncio.to_thread(action)


def status_fault(http_status: int, **extra: Any) -> dict[str, Any]:
    return {"route": "create_call", "mode": "status", "status": http_status, **extra}


DROPS = {"route": "create_call", "mode": "drop_after_create", "count": 2}


@pytest.mark.parametrize(
    ("case", "fault", "analytics", "unknown"),
    [
        # A 503 that created nothing: proven not placed (conversation details, after the settle
        # time, channel healthy), so dialed again, without using up the single attempt.
        ("5xx-burst", status_fault(503, count=3), True, 0),
        # Without the analytics permission nothing can prove "not placed": left for review.
        ("5xx-burst-no-analytics", status_fault(503, count=3), False, 3),
        ("429-storm", status_fault(429, retry_after=1, count=6), True, 0),
        # The calls exist: found on the agent's topic by their attempt id, with or without
        # analytics, and followed to their outcome.
        ("dropped-answers", DROPS, True, 0),
        ("dropped-answers-no-analytics", DROPS, False, 0),
        ("slow-api", {"route": "any", "mode": "latency", "seconds": 0.05}, True, 0),
    ],
)
async def test_campaign_under_api_faults(
    emulator: EmulatorServer,
    tmp_path: Path,
    case: str,
    fault: dict[str, Any],
    analytics: bool,
    unknown: int,
) -> None:
    numbers = [fresh_number(nn) for nn in range(CONTACTS)]
    await asyncio.to_thread(lambda: emulator.add_fault(**fault))
    run = await run_campaign(emulator, tmp_path, numbers, analytics=analytics)
    check_campaign(emulator, numbers, run)
    statuses = [c.status for c in run.contacts]
    assert statuses.count(ContactStatus.UNKNOWN) == unknown, run.result.reason
    assert statuses.count(ContactStatus.DONE) == CONTACTS - unknown


@pytest.mark.parametrize(
    "trouble",
    ["revoke-tokens", "expire-tokens", "socket-drops", "socket-drops-warned"],
)
async def test_campaign_through_mid_run_trouble(
    emulator: EmulatorServer, tmp_path: Path, trouble: str
) -> None:
    actions = {
        "revoke-tokens": lambda: later(0.3, emulator.revoke_tokens),
        "expire-tokens": lambda: later(0.3, emulator.expire_tokens),
        "socket-drops": lambda: later(0.2, lambda: emulator.close_websockets(warn=False), times=3),
        "socket-drops-warned": lambda: later(
            0.2, lambda: emulator.close_websockets(warn=True), times=3
        ),
    }
    numbers = [fresh_number(nn) for nn in range(CONTACTS)]
    run = await run_campaign(emulator, tmp_path, numbers, trouble=actions[trouble])
    check_campaign(emulator, numbers, run)
    assert all(c.status is ContactStatus.DONE for c in run.contacts), run.result.reason
    assert len(emulator.calls_created()) == CONTACTS
