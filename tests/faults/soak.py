"""The soak: randomised faults against the emulator for minutes, then the counts.

``make soak`` (or ``python -m tests.faults.soak --duration 180 --seed 1``) runs rounds until the
duration is up. Each round resets a loopback emulator, puts a random mix of faults in force
(dropped and withheld answers, 5xx, 429 with Retry-After, slow responses, token endpoint
failures, token expiry or revocation, WebSocket drops) and places a batch of calls through the
async and the sync client; every few rounds it also runs a small campaign. It prints how many
calls were attempted, placed, unknown and refused, and the two numbers that must stay zero:
duplicates (a number rung twice) and lost contacts. It exits 1 if either is not zero, or if an
attempt was reported refused although its call exists.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcdial.emulator import EmulatorConfig, EmulatorServer

from .campaign_support import lost_contacts, run_campaign
from .support import (
    Attempt,
    QuickTime,
    async_client,
    create_async,
    create_sync,
    created_numbers,
    duplicates,
    sync_client,
)

FAULT_MENU: list[dict[str, Any]] = [
    {"route": "create_call", "mode": "drop_after_create", "probability": 0.2},
    {"route": "create_call", "mode": "hang_after_create", "seconds": 1.0, "probability": 0.1},
    {"route": "create_call", "mode": "status", "status": 503, "probability": 0.15},
    {"route": "create_call", "mode": "status", "status": 500, "probability": 0.05},
    {"route": "create_call", "mode": "status", "status": 429, "retry_after": 1, "probability": 0.2},
    {"route": "any", "mode": "latency", "seconds": 0.05, "probability": 0.3},
    {"route": "token", "mode": "status", "status": 503, "probability": 0.1},
    {"route": "get_call", "mode": "status", "status": 503, "probability": 0.2},
    {"route": "notifications", "mode": "status", "status": 503, "probability": 0.3},
]
CLIENT_TIMEOUT_S = 0.4
BATCH = 12
CAMPAIGN_EVERY = 4
CAMPAIGN_CONTACTS = 8


@dataclass
class Tally:
    """The soak's counts."""

    rounds: int = 0
    attempted: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    misreported: list[str] = field(default_factory=list)
    campaigns: int = 0
    campaign_contacts: int = 0
    lost: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.duplicates or self.lost or self.misreported)

    def lines(self) -> list[str]:
        return [
            f"rounds:                 {self.rounds}",
            f"calls attempted:        {self.attempted}",
            f"  placed:               {self.kinds['placed']}",
            f"  outcome unknown:      {self.kinds['unknown']}",
            f"  refused (not placed): {self.kinds['refused']}",
            f"campaigns:              {self.campaigns} ({self.campaign_contacts} contacts)",
            f"duplicates:             {self.duplicates}   (must be 0)",
            f"lost contacts:          {len(self.lost)}   (must be 0)",
            f"misreported attempts:   {len(self.misreported)}   (must be 0)",
        ]


def numbers(rng: random.Random, count: int) -> list[str]:
    """Distinct dialable numbers; the last two digits (the emulator's outcome) mostly answer."""
    picked: set[str] = set()
    while len(picked) < count:
        nn = rng.choice([rng.randrange(0, 50)] * 3 + [rng.randrange(50, 90)])
        picked.add(f"+1415555{rng.randrange(100):02d}{nn:02d}")
    return sorted(picked)


def settle(emulator: EmulatorServer, attempts: list[Attempt], tally: Tally) -> None:
    """Count a round's attempts once withheld and slow answers have been acted on."""
    time.sleep(1.2)  # a hang_after_create or a slow create acts within this
    created = created_numbers(emulator)
    tally.duplicates += len(duplicates(emulator))
    for attempt in attempts:
        tally.attempted += 1
        tally.kinds[attempt.kind] += 1
        if attempt.kind == "placed" and created[attempt.number] != 1:
            tally.misreported.append(f"{attempt.number}: placed, {created[attempt.number]} calls")
        if attempt.kind == "refused" and created[attempt.number]:
            tally.misreported.append(f"{attempt.number}: refused ({attempt.error}), yet placed")


async def trouble_for(emulator: EmulatorServer, rng: random.Random) -> None:
    """Now and then, lose the tokens or the sockets in the middle of the round."""
    actions: list[Callable[[], object]] = [
        emulator.expire_tokens,
        emulator.revoke_tokens,
        lambda: emulator.close_websockets(warn=True),
        lambda: emulator.close_websockets(warn=False),
    ]
    for _ in range(rng.randrange(0, 3)):
        await asyncio.sleep(rng.uniform(0.05, 0.4))
        await asyncio.to_thread(rng.choice(actions))


async def call_round(emulator: EmulatorServer, rng: random.Random) -> list[Attempt]:
    batch = numbers(rng, BATCH)
    async_part, sync_part = batch[: BATCH // 2], batch[BATCH // 2 :]
    async with async_client(emulator, QuickTime(), timeout_s=CLIENT_TIMEOUT_S) as client:
        side = asyncio.create_task(trouble_for(emulator, rng))
        attempts = list(await asyncio.gather(*(create_async(client, n) for n in async_part)))
        await side

    def sync_calls() -> list[Attempt]:
        with sync_client(emulator, QuickTime(), timeout_s=CLIENT_TIMEOUT_S) as client:
            return [create_sync(client, n) for n in sync_part]

    return attempts + await asyncio.to_thread(sync_calls)


async def campaign_round(
    emulator: EmulatorServer, rng: random.Random, tally: Tally, folder: Path
) -> None:
    contacts = numbers(rng, CAMPAIGN_CONTACTS)
    run = await run_campaign(emulator, folder, contacts, trouble=lambda: trouble_for(emulator, rng))
    await asyncio.to_thread(time.sleep, 1.2)
    tally.campaigns += 1
    tally.campaign_contacts += len(contacts)
    tally.duplicates += len(duplicates(emulator))
    tally.lost += lost_contacts(emulator, contacts, run)


def one_round(emulator: EmulatorServer, rng: random.Random, tally: Tally, folder: Path) -> None:
    emulator.reset()
    for spec in rng.sample(FAULT_MENU, rng.randrange(1, 5)):
        emulator.add_fault(**spec)
    if tally.rounds % CAMPAIGN_EVERY == CAMPAIGN_EVERY - 1:
        asyncio.run(campaign_round(emulator, rng, tally, folder))
    else:
        attempts = asyncio.run(call_round(emulator, rng))
        settle(emulator, attempts, tally)
    tally.rounds += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.soak", description=__doc__)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds (default 180)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--speed", type=float, default=100.0, help="emulator clock speed")
    parser.add_argument("--verbose", action="store_true", help="show gcdial's and uvicorn's logs")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    tally = Tally()
    deadline = time.monotonic() + args.duration
    config = EmulatorConfig(speed=args.speed, admin=True, seed=args.seed)
    print(
        f"soak: {args.duration:g} s, seed {args.seed}, emulator speed {args.speed:g}x", flush=True
    )
    with EmulatorServer(config) as emulator, tempfile.TemporaryDirectory() as tmp:
        if not args.verbose:
            # Unknown outcomes and cut answers are expected here by the dozen: the tally counts
            # them. (After the start: uvicorn sets its own levels when it starts.)
            for name in ("gcdial", "uvicorn", "uvicorn.error"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
        while time.monotonic() < deadline:
            folder = Path(tmp) / f"round-{tally.rounds}"
            folder.mkdir()
            one_round(emulator, rng, tally, folder)
            print(
                f"  round {tally.rounds}: {tally.attempted} calls, {tally.campaigns} campaigns, "
                f"{tally.duplicates} duplicates, {len(tally.lost)} lost",
                flush=True,
            )
    print("\n".join(tally.lines()))
    for problem in [*tally.lost, *tally.misreported]:
        print(f"PROBLEM: {problem}")
    print("soak: FAILED" if tally.failed else "soak: OK")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
