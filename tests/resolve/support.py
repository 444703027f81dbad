"""What the dialing-core tests share: the emulator's clock for the core, and the truth check."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from gcdial.config import Settings
from gcdial.dialing import Dial
from gcdial.emulator import EmulatorServer
from gcdial.resolve import Verdict

NO_ANALYTICS_ID = "sandbox-no-analytics"
NO_ANALYTICS_SECRET = "sandbox-no-analytics-secret"


def sim_time(
    emulator: EmulatorServer,
) -> tuple[Callable[[], float], Callable[[float], Awaitable[None]]]:
    """The emulator's simulated clock, and a sleep in simulated seconds, for the core."""
    clock = emulator.state.clock

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds / clock.speed)

    return clock.now, sleep


def settings_for(emulator: EmulatorServer, *, analytics: bool = True, **fields: Any) -> Settings:
    """Emulator settings (nothing from the environment); without analytics: the client that
    lacks the conversation-details permission."""
    return Settings.model_validate(
        {
            "api_base_url": emulator.base_url,
            "client_id": emulator.client_id if analytics else NO_ANALYTICS_ID,
            "client_secret": emulator.client_secret if analytics else NO_ANALYTICS_SECRET,
            **fields,
        }
    )


def acted(emulator: EmulatorServer) -> dict[str, str]:
    """Attempt id -> conversation id of every call the emulator really created."""
    truth: dict[str, str] = {}
    for call in emulator.calls_created():
        attributes = (call.get("body") or {}).get("attributes") or {}
        tag = attributes.get("gcdialAttemptId")
        if tag:
            truth[tag] = str(call["id"])
    return truth


def wrong_verdict(dial: Dial, truth: dict[str, str]) -> str | None:
    """Why ``dial``'s verdict contradicts what the emulator did, or None when it does not."""
    verdict = dial.resolution.verdict
    created = truth.get(dial.attempt_id)
    if verdict is Verdict.PLACED and created is None:
        return f"{dial.attempt_id}: placed, but no call was created"
    if verdict is Verdict.PLACED and created != dial.conversation_id:
        return f"{dial.attempt_id}: placed as {dial.conversation_id}, really {created}"
    if verdict is Verdict.NOT_PLACED and created is not None:
        return f"{dial.attempt_id}: NOT PLACED, but call {created} exists"
    return None
