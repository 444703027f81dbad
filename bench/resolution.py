"""The resolution ladder: time from an ambiguous create to a verdict, and what it costs.

Every create is made ambiguous by an emulator fault; the ladder runs with gcdial's default settle
time (120 s) against the emulator's default ingestion delay (90 s), on the emulator's clock
(accelerated), so the times are those a real resolution would take. REST requests are counted by
the emulator. The baseline of the times is the settle time itself; the baseline of the per-call
cost is following a placed call the way gcdial did before the core (the POST, then a catch-up GET).
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

from bench._harness import Section
from gcdial import AsyncClient, CallParams
from gcdial.config import Settings
from gcdial.dialing import Dial
from gcdial.emulator import EmulatorConfig, EmulatorServer
from gcdial.monitor import CallMonitor

SPEED = 100.0
AGENT = "11111111-1111-4111-8111-111111111111"
SETTLE_S = 120.0
ROUNDS = 8
FOLLOWED_CALLS = 20
NOT_REST = ("POST /oauth/token",)


def _settings(emu: EmulatorServer, *, analytics: bool = True) -> Settings:
    return Settings.model_validate(
        {
            "api_base_url": emu.base_url,
            "client_id": emu.client_id if analytics else "sandbox-no-analytics",
            "client_secret": emu.client_secret if analytics else "sandbox-no-analytics-secret",
            "analytics_settle_s": SETTLE_S,
            "timeout_s": 2.0,
        }
    )


def _sim(emu: EmulatorServer) -> tuple[Callable[[], float], Callable[[float], Awaitable[None]]]:
    clock = emu.state.clock

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds / clock.speed)

    return clock.now, sleep


def _rest(emu: EmulatorServer) -> int:
    by_route: dict[str, int] = emu.request_counts()["byRoute"]
    return sum(n for route, n in by_route.items() if route not in NOT_REST)


async def _ladder_step(
    emu: EmulatorServer, fault: dict[str, Any], *, analytics: bool, channel: bool
) -> tuple[list[float], list[int], list[str]]:
    clock, sleep = _sim(emu)
    times: list[float] = []
    costs: list[int] = []
    verdicts: list[str] = []
    for _ in range(ROUNDS):
        emu.clear_faults()
        if not channel:
            emu.add_fault(route="notifications", mode="status", status=403)
        emu.add_fault(route="create_call", count=1, **fault)
        async with AsyncClient(_settings(emu, analytics=analytics)) as client:
            await client.agents.get(AGENT)
            before = _rest(emu)
            dial: Dial = await client.dial(
                AGENT,
                CallParams(to="+14155550149"),
                check_agent=False,
                resolve_timeout_s=SETTLE_S * 2,
                clock=clock,
                sleep=sleep,
            )
            # The create itself is not part of the resolution.
            costs.append(_rest(emu) - before - 1)
        assert dial.resolved_in_s is not None
        times.append(dial.resolved_in_s)
        verdicts.append(dial.resolution.verdict.value)
    return times, costs, verdicts


async def _per_call(emu: EmulatorServer) -> tuple[float, float]:
    """REST requests per placed, followed call: the old way (POST + catch-up GET) vs the core."""
    emu.clear_faults()
    async with AsyncClient(_settings(emu)) as client, CallMonitor(client.transport) as monitor:
        await monitor.watch_agent(AGENT)
        before = _rest(emu)
        for _ in range(FOLLOWED_CALLS):
            created = await client.calls.create(
                AGENT, CallParams(to="+14155550110"), check_agent=False
            )
            await monitor.wait(created.id, agent_id=AGENT)
        old = (_rest(emu) - before) / FOLLOWED_CALLS
        before = _rest(emu)
        for _ in range(FOLLOWED_CALLS):
            await client.dial(
                AGENT,
                CallParams(to="+14155550110"),
                check_agent=False,
                follow=True,
                monitor=monitor,
            )
        new = (_rest(emu) - before) / FOLLOWED_CALLS
    return old, new


def _row(name: str, result: tuple[list[float], list[int], list[str]]) -> list[str]:
    times, costs, verdicts = result
    median = statistics.median(times)
    return [
        name,
        ", ".join(sorted(set(verdicts))),
        f"{median:.1f} s",
        f"{median / SETTLE_S:.2f}",
        f"{statistics.mean(costs):.1f}",
    ]


async def _measure() -> tuple[list[list[str]], tuple[float, float]]:
    config = EmulatorConfig(speed=SPEED, admin=True, rate_limit_per_minute=100_000)
    with EmulatorServer(config) as emu:
        acted = {"mode": "drop_after_create"}
        not_acted = {"mode": "status_without_create", "status": 503}
        rows = [
            _row(
                "1 live evidence (acted)",
                await _ladder_step(emu, acted, analytics=True, channel=True),
            ),
            _row(
                "2 details, found (acted, no channel)",
                await _ladder_step(emu, acted, analytics=True, channel=False),
            ),
            _row(
                "2 details, not found + healthy channel (not acted)",
                await _ladder_step(emu, not_acted, analytics=True, channel=True),
            ),
            _row(
                "3 unknown: no analytics permission (not acted)",
                await _ladder_step(emu, not_acted, analytics=False, channel=True),
            ),
        ]
        per_call = await _per_call(emu)
    return rows, per_call


def run() -> list[Section]:
    """Measure and describe."""
    rows, (old, new) = asyncio.run(_measure())
    return [
        Section(
            title="Resolving an ambiguous create",
            command="make bench ARGS=resolution",
            headers=[
                "ladder step",
                "verdict",
                "median time to verdict (emulator clock)",
                "vs settle time (baseline, 120 s)",
                "REST requests per resolution",
            ],
            table=rows,
            notes=[
                f"{ROUNDS} ambiguous creates per row, one at a time; emulator at {SPEED:g}x, "
                "ingestion delay 90 s (its default), gcdial's default settle time 120 s.",
                "REST requests per resolution count everything after the create-call POST: the "
                "notifications channel (create + subscribe) and the details query pages.",
                "Step 3 waits until --resolve-timeout (here 240 s) and stays unknown: without "
                "the analytics permission a call that never shows live cannot be ruled out.",
            ],
        ),
        Section(
            title="REST requests per placed call with a healthy channel",
            command="make bench ARGS=resolution",
            headers=["following a placed call", "REST requests per call", "ratio"],
            table=[
                ["POST, then a catch-up GET (before the core; baseline)", f"{old:.2f}", "1.00"],
                [
                    "dial(follow=True) on a channel healthy since before the POST",
                    f"{new:.2f}",
                    f"{new / old:.2f}",
                ],
            ],
            notes=[
                f"{FOLLOWED_CALLS} answered calls each, one shared CallMonitor watching the agent.",
                "At 300 requests a minute per token that is "
                f"{300 / old:.0f} vs {300 / new:.0f} calls a minute.",
            ],
        ),
    ]
