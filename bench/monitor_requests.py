"""REST requests spent following one call, against call length: WebSocket vs polling.

Each call is placed on the emulator (accelerated clock) and followed to its outcome with
gcdial's CallMonitor; the emulator counts every request it receives. Poll intervals are scaled to
simulated time, so the counts are those a real call of that length would cost.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import httpx

from bench._harness import Section
from gcdial.emulator import EmulatorConfig, EmulatorServer
from gcdial.http import AsyncApiTransport
from gcdial.monitor.follow import CallMonitor, MonitorMode
from gcdial.monitor.outcome import OutcomeKind
from gcdial.monitor.polling import PollSettings

SPEED = 25.0
AGENT = "11111111-1111-4111-8111-111111111111"
# Numbers ending in NN talk 10 + NN simulated seconds (design.md).
TALKS = {10: 0, 30: 20, 59: 49}
MONITOR_ROUTES = {
    "POST /api/v2/notifications/channels": "channel",
    "PUT /api/v2/notifications/channels/{channelId}/subscriptions": "subscribe",
    "GET /api/v2/conversations/calls/{conversationId}": "get",
}


@dataclass
class Row:
    mode: str
    talk_s: int
    outcome: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _scaled(settings: PollSettings) -> PollSettings:
    """Poll intervals in simulated seconds, as they would be against a real call."""
    return PollSettings(
        initial_s=settings.initial_s / SPEED,
        factor=settings.factor,
        max_s=settings.max_s / SPEED,
    )


async def _follow_one(emu: EmulatorServer, mode: MonitorMode, nn: int, poll: PollSettings) -> str:
    async with httpx.AsyncClient(timeout=10.0) as http:
        token = await http.post(
            emu.base_url + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(emu.client_id, emu.client_secret),
        )
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        transport = AsyncApiTransport(http, base_url=emu.base_url)
        async with CallMonitor(transport, mode=mode, poll_settings=_scaled(poll)) as monitor:
            await monitor.watch_agent(AGENT)
            created = await transport.request(
                "POST",
                f"/api/v2/conversations/calls/user/{AGENT}",
                json={"phoneNumber": f"+1415555{nn:04d}"},
                idempotent=False,
            )
            outcome = await monitor.wait(created.json()["id"], timeout_s=120)
    return outcome.kind.value


def _measure(emu: EmulatorServer, label: str, mode: MonitorMode, poll: PollSettings) -> list[Row]:
    rows = []
    for talk_s, nn in TALKS.items():
        emu.reset()
        outcome = asyncio.run(_follow_one(emu, mode, nn, poll))
        by_route = emu.request_counts()["byRoute"]
        counts = {short: int(by_route.get(route, 0)) for route, short in MONITOR_ROUTES.items()}
        rows.append(Row(label, talk_s, outcome, counts))
    return rows


def measure() -> list[Row]:
    """Follow one answered call per talk length in each mode; the requests each cost."""
    config = EmulatorConfig(speed=SPEED, admin=True)
    with EmulatorServer(config) as emu:
        return [
            *_measure(emu, "websocket", MonitorMode.WEBSOCKET, PollSettings()),
            *_measure(emu, "polling (gcdial backoff)", MonitorMode.POLLING, PollSettings()),
            *_measure(
                emu,
                "polling every 1 s (naive)",
                MonitorMode.POLLING,
                PollSettings(initial_s=1.0, factor=1.0, max_s=1.0),
            ),
        ]


def run() -> list[Section]:
    """The benchmark's section of RESULTS.md."""
    rows = measure()
    websocket = [r.total for r in rows if r.mode == "websocket"]
    flat = len(set(websocket)) == 1
    answered = all(r.outcome == OutcomeKind.ANSWERED.value for r in rows)
    table = [
        [
            r.mode,
            f"{r.talk_s} s",
            r.outcome,
            str(r.counts["channel"]),
            str(r.counts["subscribe"]),
            str(r.counts["get"]),
            str(r.total),
        ]
        for r in rows
    ]
    return [
        Section(
            title="Monitor: REST requests per followed call",
            command="make bench ARGS=monitor_requests",
            headers=[
                "mode",
                "talk time",
                "outcome",
                "channel POST",
                "subscriptions PUT",
                "GET",
                "total",
            ],
            table=table,
            notes=[
                "One monitor per call, subscribed to the agent before the call is placed; "
                "token and create-call requests not counted.",
                "WebSocket mode "
                + ("stays flat with call length." if flat else f"GREW with length: {websocket}."),
                "A long-lived monitor (e.g. a campaign) pays the channel and subscription once: "
                "one GET per call after that.",
                f"Emulator at speed {SPEED:g}; poll intervals scaled to simulated time.",
            ],
            ok=flat and answered,
        )
    ]


def main() -> int:
    """Print the table; exit 1 if WebSocket mode grew with call length."""
    section = run()[0]
    print(section.markdown())
    return 0 if section.ok else 1


if __name__ == "__main__":
    sys.exit(main())
