"""The dialing core against the emulator: costs, every ambiguous-create kind, sync and async."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gcdial import AsyncClient, CallParams, Client, Verdict
from gcdial.dialing import keep_resolving
from gcdial.emulator import EmulatorServer
from gcdial.monitor import CallMonitor
from gcdial.resolve import Attempt, query_details, search_interval

from .support import acted, settings_for, sim_time, wrong_verdict

ALICE = "11111111-1111-4111-8111-111111111111"
CREATE = "POST /api/v2/conversations/calls/user/{userId}"
GET_CALL = "GET /api/v2/conversations/calls/{conversationId}"
ANSWERS = "+14155550100"
RINGS_LONG = "+14155550149"
SETTLE: dict[str, Any] = {"analytics_settle_s": 30.0, "timeout_s": 1.0}


def _counts(emulator: EmulatorServer) -> dict[str, int]:
    return dict(emulator.request_counts()["byRoute"])


def test_a_plain_dial_costs_three_requests(emulator: EmulatorServer) -> None:
    clock, sleep = sim_time(emulator)
    with Client(settings_for(emulator)) as client:
        dial = client.dial(ALICE, CallParams(to=ANSWERS), clock=clock, sleep=sleep)
    assert dial.resolution.verdict is Verdict.PLACED
    assert emulator.request_counts()["total"] == 3, _counts(emulator)
    (created,) = emulator.calls_created()
    assert created["id"] == dial.conversation_id
    assert created["body"]["attributes"] == {"gcdialAttemptId": dial.attempt_id}


async def test_a_followed_dial_on_a_healthy_channel_costs_one_rest_request(
    emulator: EmulatorServer,
) -> None:
    clock, sleep = sim_time(emulator)
    async with (
        AsyncClient(settings_for(emulator)) as client,
        CallMonitor(client.transport) as monitor,
    ):
        await monitor.watch_agent(ALICE)
        first = await client.dial(
            ALICE, CallParams(to=ANSWERS), check_agent=False, follow=True, monitor=monitor
        )
        before = emulator.request_counts()["total"]
        second = await client.dial(
            ALICE,
            CallParams(to=ANSWERS),
            check_agent=False,
            follow=True,
            monitor=monitor,
            clock=clock,
            sleep=sleep,
        )
        after = emulator.request_counts()["total"]
    assert first.outcome is not None
    assert second.outcome is not None
    assert second.outcome.kind.value == "answered"
    assert next(e.kind.value for e in second.events) == "agent_alerting"
    assert after - before == 1, _counts(emulator)
    assert _counts(emulator).get(GET_CALL, 0) == 0


FAULTS: list[tuple[str, dict[str, Any], bool]] = [
    ("drop after create", {"mode": "drop_after_create"}, True),
    ("503 without acting", {"mode": "status", "status": 503}, False),
    ("500 without acting", {"mode": "status", "status": 500}, False),
    ("302 without acting", {"mode": "status", "status": 502}, False),
]


@pytest.mark.parametrize(("name", "fault", "was_acted"), FAULTS, ids=[f[0] for f in FAULTS])
def test_sync_dial_resolves_each_fault_kind(
    emulator: EmulatorServer, name: str, fault: dict[str, Any], was_acted: bool
) -> None:
    emulator.set_analytics(ingestion_delay=5)
    emulator.add_fault(route="create_call", count=1, **fault)
    clock, sleep = sim_time(emulator)
    with Client(settings_for(emulator, **SETTLE)) as client:
        dial = client.dial(ALICE, CallParams(to=ANSWERS), clock=clock, sleep=sleep)
    assert dial.ambiguity is not None
    assert wrong_verdict(dial, acted(emulator)) is None
    expected = Verdict.PLACED if was_acted else Verdict.NOT_PLACED
    assert dial.resolution.verdict is expected, dial.resolution.evidence
    assert emulator.request_counts()["byRoute"][CREATE] == 1


@pytest.mark.parametrize(("name", "fault", "was_acted"), FAULTS, ids=[f[0] for f in FAULTS])
async def test_async_dial_resolves_and_follows_each_fault_kind(
    emulator: EmulatorServer, name: str, fault: dict[str, Any], was_acted: bool
) -> None:
    emulator.set_analytics(ingestion_delay=5)
    emulator.add_fault(route="create_call", count=1, **fault)
    clock, sleep = sim_time(emulator)
    async with AsyncClient(settings_for(emulator, **SETTLE)) as client:
        dial = await client.dial(
            ALICE, CallParams(to=ANSWERS), follow=True, clock=clock, sleep=sleep
        )
    assert wrong_verdict(dial, acted(emulator)) is None
    if was_acted:
        assert dial.resolution.verdict is Verdict.PLACED
        assert dial.outcome is not None
        assert dial.outcome.kind.value == "answered"
    else:
        assert dial.resolution.verdict is Verdict.NOT_PLACED
        assert dial.outcome is None


async def test_without_analytics_an_acted_create_resolves_from_live_evidence(
    emulator: EmulatorServer,
) -> None:
    emulator.add_fault(route="create_call", mode="drop_after_create", count=1)
    clock, sleep = sim_time(emulator)
    settings = settings_for(emulator, analytics=False, **SETTLE)
    async with AsyncClient(settings) as client:
        dial = await client.dial(ALICE, CallParams(to=RINGS_LONG), clock=clock, sleep=sleep)
    assert dial.resolution.verdict is Verdict.PLACED
    assert [e.source for e in dial.resolution.evidence][-1] == "live"
    assert _counts(emulator).get("POST /api/v2/analytics/conversations/details/query", 0) == 0


async def test_without_analytics_a_create_that_did_nothing_stays_unknown(
    emulator: EmulatorServer,
) -> None:
    emulator.add_fault(route="create_call", mode="status", status=503, count=1)
    clock, sleep = sim_time(emulator)
    settings = settings_for(emulator, analytics=False, **SETTLE)
    async with AsyncClient(settings) as client:
        dial = await client.dial(
            ALICE, CallParams(to=ANSWERS), resolve_timeout_s=60, clock=clock, sleep=sleep
        )
    assert dial.resolution.verdict is Verdict.UNKNOWN
    assert any("analytics:conversationDetail:view" in e.detail for e in dial.resolution.evidence)


async def test_a_notifications_outage_during_the_settle_time_is_never_not_placed(
    emulator: EmulatorServer,
) -> None:
    emulator.set_analytics(ingestion_delay=5)
    emulator.add_fault(route="create_call", mode="status", status=503, count=1)
    clock, sleep = sim_time(emulator)
    async with AsyncClient(settings_for(emulator, **SETTLE)) as client:
        task = asyncio.create_task(
            client.dial(ALICE, CallParams(to=ANSWERS), clock=clock, sleep=sleep)
        )
        closed = 0
        for _ in range(200):  # as soon as the core's socket is open, during the settle time
            await asyncio.sleep(0.01)
            closed = await asyncio.to_thread(emulator.close_websockets, False)
            if closed:
                break
        assert closed >= 1
        dial = await task
    assert dial.resolution.verdict is Verdict.UNKNOWN
    assert dial.resolution.evidence[-1].source == "channel"


async def test_no_channel_at_all_is_never_not_placed(emulator: EmulatorServer) -> None:
    emulator.set_analytics(ingestion_delay=5)
    emulator.add_fault(route="create_call", mode="status", status=503, count=1)
    emulator.add_fault(route="notifications", mode="status", status=403)
    clock, sleep = sim_time(emulator)
    async with AsyncClient(settings_for(emulator, **SETTLE)) as client:
        dial = await client.dial(ALICE, CallParams(to=ANSWERS), clock=clock, sleep=sleep)
    assert dial.resolution.verdict is Verdict.UNKNOWN


async def test_details_without_attributes_match_on_number_and_time(
    emulator: EmulatorServer,
) -> None:
    emulator.set_analytics(ingestion_delay=5, include_attributes=False)
    emulator.add_fault(route="notifications", mode="status", status=403)
    emulator.add_fault(route="create_call", mode="drop_after_create", count=1)
    clock, sleep = sim_time(emulator)
    async with AsyncClient(settings_for(emulator, **SETTLE)) as client:
        dial = await client.dial(ALICE, CallParams(to=ANSWERS), clock=clock, sleep=sleep)
    assert dial.resolution.verdict is Verdict.PLACED
    assert wrong_verdict(dial, acted(emulator)) is None
    assert "untagged" in dial.resolution.evidence[-1].detail


@pytest.mark.parametrize("channel", [True, False], ids=["channel", "no-channel"])
async def test_an_earlier_untagged_call_is_not_taken_for_a_later_attempt(
    emulator: EmulatorServer, channel: bool
) -> None:
    """The untagged fallback's lower bound is the server's time when the POST left, not the
    ``Date`` of the client's last response, which may be long before it."""
    emulator.set_analytics(ingestion_delay=5, include_attributes=False)
    if not channel:
        emulator.add_fault(route="notifications", mode="status", status=403)
    clock, sleep = sim_time(emulator)
    settings = settings_for(emulator, **SETTLE)
    async with AsyncClient(settings, clock=clock, sleep=sleep) as client:
        first = await client.dial(ALICE, CallParams(to=ANSWERS), clock=clock, sleep=sleep)
        assert first.conversation_id is not None
        await sleep(90)  # a minute and a half without a word to the server
        emulator.add_fault(route="create_call", mode="drop_without_create", count=1)
        second = await client.dial(
            ALICE, CallParams(to=ANSWERS), check_agent=False, clock=clock, sleep=sleep
        )
    assert second.ambiguity is not None
    # The first call is the agent's only untagged call to the number: it must not be taken for
    # the second attempt, which the server never acted on.
    assert second.conversation_id != first.conversation_id
    assert wrong_verdict(second, acted(emulator)) is None
    # Proven not placed only with a healthy channel throughout; without one, left for a person.
    expected = Verdict.NOT_PLACED if channel else Verdict.UNKNOWN
    assert second.resolution.verdict is expected, second.resolution.evidence


@pytest.mark.parametrize("was_acted", [True, False], ids=["acted", "not-acted"])
async def test_a_dial_left_unknown_is_resolved_later_on_the_same_channel(
    emulator: EmulatorServer, was_acted: bool
) -> None:
    """A service answers within a short ``resolve_timeout_s`` (before the details can settle),
    then goes on with the ladder: the verdict comes once the settle time has passed."""
    emulator.set_analytics(ingestion_delay=5)
    mode = "drop_after_create" if was_acted else "drop_without_create"
    clock, sleep = sim_time(emulator)
    settings = settings_for(emulator, **SETTLE)
    async with (
        AsyncClient(settings, clock=clock, sleep=sleep) as client,
        CallMonitor(client.transport, clock=clock, sleep=sleep) as monitor,
    ):
        await monitor.watch_agent(ALICE)
        emulator.add_fault(route="create_call", mode=mode, count=1)
        dial = await client.dial(
            ALICE,
            CallParams(to=ANSWERS),
            check_agent=False,
            monitor=monitor,
            resolve_timeout_s=0.0,  # the answer is due at once: unknown so far
            clock=clock,
            sleep=sleep,
        )
        assert dial.resolution.verdict is Verdict.UNKNOWN
        resolution = await keep_resolving(
            client.transport,
            dial,
            monitor=monitor,
            settings=settings,
            timeout_s=SETTLE["analytics_settle_s"] + 30,
            clock=clock,
            sleep=sleep,
        )
    assert resolution is dial.resolution
    assert wrong_verdict(dial, acted(emulator)) is None
    expected = Verdict.PLACED if was_acted else Verdict.NOT_PLACED
    assert resolution.verdict is expected, resolution.evidence
    assert emulator.request_counts()["byRoute"][CREATE] == 1


def _attempt(client: AsyncClient, attempt_id: str = "nope") -> Attempt:
    now = client.transport.server_clock.now()
    assert now is not None
    return Attempt(attempt_id, ALICE, ANSWERS, sent_at=now, sent_after=now)


async def _answer(client: AsyncClient, attempt_id: str = "nope") -> str:
    await client.agents.get(ALICE)  # learn the server's clock
    attempt = _attempt(client, attempt_id)
    interval = search_interval(attempt, client.transport.server_clock.now())
    return (await query_details(client.transport, attempt, interval)).status


async def test_details_query_refusals_and_floods_keep_the_attempt_unknown(
    emulator: EmulatorServer,
) -> None:
    async with AsyncClient(settings_for(emulator, analytics=False)) as client:
        assert await _answer(client) == "forbidden"
    emulator.add_fault(route="analytics", mode="status", status=429, retry_after=0, count=5)
    async with AsyncClient(settings_for(emulator), max_retries=1) as client:
        assert await _answer(client) == "rate_limited"
    emulator.clear_faults()
    # Ten pages of 100 are read; one conversation more and the search cannot be complete.
    emulator.set_analytics(filler_conversations=1001)
    async with AsyncClient(settings_for(emulator)) as client:
        assert await _answer(client) == "incomplete"
    emulator.set_analytics(filler_conversations=1000)
    async with AsyncClient(settings_for(emulator)) as client:
        assert await _answer(client) == "not_found"


def test_wait_and_dial_use_the_callers_http_client(emulator: EmulatorServer) -> None:
    seen: list[str] = []

    def count(request: httpx.Request) -> None:
        seen.append(f"{request.method} {request.url.path}")

    http = httpx.Client(event_hooks={"request": [count]}, timeout=5)
    clock, sleep = sim_time(emulator)
    with http, Client(settings_for(emulator), http_client=http) as client:
        dial = client.dial(ALICE, CallParams(to=ANSWERS), follow=True, clock=clock, sleep=sleep)
        assert dial.conversation_id is not None
        outcome = client.calls.wait(dial.conversation_id)
    assert outcome.kind.value == "answered"
    assert any(line.startswith("POST /api/v2/notifications/channels") for line in seen)
    assert any(line.startswith("GET /api/v2/conversations/calls/") for line in seen)


async def test_a_clock_skew_between_machine_and_genesys_never_hides_a_call(
    make_emulator: Any,
) -> None:
    emulator: EmulatorServer = make_emulator(analytics_ingestion_delay_s=5)
    emulator.set_speed(100_000)  # Genesys' clock runs ahead of this machine's by over an hour
    await asyncio.sleep(0.06)
    emulator.set_speed(50)
    clock, sleep = sim_time(emulator)
    emulator.add_fault(route="notifications", mode="status", status=403)  # details only
    emulator.add_fault(route="create_call", mode="drop_after_create", count=1)
    async with AsyncClient(settings_for(emulator, **SETTLE)) as client:
        dial = await client.dial(ALICE, CallParams(to=ANSWERS), clock=clock, sleep=sleep)
        server_now = client.transport.server_clock.now()
    assert server_now is not None
    assert (server_now - dial.attempt.sent_at).total_seconds() > 3600
    assert dial.resolution.verdict is Verdict.PLACED
    assert dial.resolution.evidence[-1].source == "details"
    assert wrong_verdict(dial, acted(emulator)) is None
