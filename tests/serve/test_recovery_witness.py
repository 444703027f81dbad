"""The witness rule of a dead replica's dials: "not placed" only with a live channel's window.

The rule itself (:func:`recovery_facts` into :func:`gcdial.resolve.decide`), then the ladder
(:func:`resolve_stale`) against the emulator with a real notifications channel: with a channel
that watched the agent for the settle time, an attempt that never reached Genesys is
``not_placed``; with no channel at all (the emulator refuses notifications), or one that dropped,
the same attempt stays ``unknown``, with evidence saying what would settle it; an attempt that did
create its call is ``placed`` either way. A call to the attempt's number whose frames never carry an
attempt id is a doubt that keeps the window from proving anything.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gcdial.calls import CallParams, CallTarget
from gcdial.client import AsyncClient
from gcdial.config import Settings
from gcdial.emulator import EmulatorServer
from gcdial.monitor import CallMonitor
from gcdial.resolve import (
    AnalyticsAnswer,
    Attempt,
    Evidence,
    LadderSettings,
    Resolution,
    Verdict,
    decide,
)
from gcdial.serve.recovery import Window, WitnessBook, recovery_facts, resolve_stale, settles_it

ALICE_ID = "11111111-1111-4111-8111-111111111111"
ANSWERS = "+14155550100"
SETTLE_S = 0.6  # real seconds
NOT_FOUND = AnalyticsAnswer("not_found", "no conversation of the agent carries the attempt id")
DIED = (Evidence("create", "the replica that sent this call stopped"),)


def _facts(window: Window | None, asked_at: float | None, *, intact: bool = True) -> Verdict:
    facts = recovery_facts(
        live=None,
        details=NOT_FOUND,
        window=window,
        asked_at=asked_at,
        intact=intact,
        settle_s=10.0,
        notes=DIED,
    )
    return decide(facts).verdict


def test_not_placed_needs_an_intact_window_open_for_the_settle_time() -> None:
    window = Window(ALICE_ID, since=100.0, mark=(1, 0))
    assert _facts(window, 110.0) is Verdict.NOT_PLACED
    # No witness at all: the details alone never say "not placed", however late they were asked.
    assert _facts(None, 10_000.0) is Verdict.UNKNOWN
    # Asked too soon after the window opened: a call created just before it may not show yet.
    assert _facts(window, 109.9) is Verdict.UNKNOWN
    # The channel dropped (or a frame was lost) within the window.
    assert _facts(window, 110.0, intact=False) is Verdict.UNKNOWN
    # Asked before the window opened (a window reopened after a drop).
    assert _facts(window, 50.0) is Verdict.UNKNOWN


def _attempt(attempt_id: str, number: str = ANSWERS) -> Attempt:
    now = datetime.now(UTC)
    return Attempt(
        attempt_id=attempt_id,
        agent_id=ALICE_ID,
        number=number,
        sent_at=now - timedelta(seconds=1),
    )


def _client(emulator: EmulatorServer) -> AsyncClient:
    settings = Settings.model_validate(
        {
            "api_base_url": emulator.base_url,
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "analytics_settle_s": SETTLE_S,
        }
    )
    return AsyncClient(settings)


async def _ladder(
    client: AsyncClient, attempt: Attempt, *, drop_with: EmulatorServer | None = None
) -> Resolution:
    monitor = CallMonitor(client.transport)
    book = WitnessBook(monitor)
    try:
        if drop_with is not None:
            await book.watch([attempt.agent_id])
            dropping = asyncio.create_task(asyncio.to_thread(drop_with.close_websockets))
        resolution = await resolve_stale(
            client.transport,
            book,
            attempt,
            ladder=LadderSettings(settle_s=SETTLE_S, retry_s=0.2),
            timeout_s=SETTLE_S * 4 if drop_with is None else SETTLE_S / 2,
            notes=DIED,
        )
        if drop_with is not None:
            await dropping
        return resolution
    finally:
        book.close()
        await monitor.close()


@pytest.mark.timeout(60)
def test_a_witness_settles_not_placed_and_no_witness_leaves_it_unknown(
    emulator: EmulatorServer,
) -> None:
    emulator.set_analytics(ingestion_delay=5)  # simulated seconds: 0.1 s real at speed 50

    async def run() -> None:
        async with _client(emulator) as client:
            never_sent = _attempt(str(uuid.uuid4()))
            witnessed = await _ladder(client, never_sent)
            assert witnessed.verdict is Verdict.NOT_PLACED, witnessed.evidence

            # A channel that drops within the window is no witness: unknown when time runs out.
            dropped = await _ladder(client, _attempt(str(uuid.uuid4())), drop_with=emulator)
            assert dropped.verdict is Verdict.UNKNOWN, dropped.evidence

            target = await client.calls.target("alice@example.com", check_agent=False)
            await _doubts(client, emulator, target)

            # The same attempt with no channel at all: the details alone are not enough.
            emulator.add_fault(route="notifications", mode="status", status=403)
            blind = await _ladder(client, _attempt(str(uuid.uuid4())))
            assert blind.verdict is Verdict.UNKNOWN, blind.evidence
            sources = {item.source for item in blind.evidence}
            assert {"details", "channel"} <= sources, blind.evidence
            assert "notifications channel" in settles_it(blind)

            # A call that the attempt did create is placed, with or without a channel.
            attempt_id = str(uuid.uuid4())
            params = CallParams(to=ANSWERS).with_attribute(
                client.settings.attempt_attribute, attempt_id
            )
            created = await client.calls.send(target, params)
            placed = await _ladder(client, _attempt(attempt_id))
            assert placed.verdict is Verdict.PLACED, placed.evidence
            assert placed.conversation_id == created.id

    asyncio.run(run())
    # The ladder never dials: the calls made above are the only ones.
    assert len(emulator.calls_created()) == 4


async def _doubts(client: AsyncClient, emulator: EmulatorServer, target: CallTarget) -> None:
    """Real frames in a window: an untagged call to the attempt's number is a doubt; a call
    tagged with another attempt's id, or to another number, is not."""
    monitor = CallMonitor(client.transport)
    book = WitnessBook(monitor)
    attempt = _attempt(str(uuid.uuid4()), number="+14155550102")
    try:
        await book.watch([ALICE_ID])
        window = book.window(ALICE_ID)
        assert window is not None
        other = CallParams(to="+14155550102").with_attribute(
            client.settings.attempt_attribute, str(uuid.uuid4())
        )
        await client.calls.send(target, other)
        await client.calls.send(target, CallParams(to="+14155550103"))
        await _frames_of(book, 2)
        assert book.doubt(attempt, window.since) is None
        untagged = await client.calls.send(target, CallParams(to="+14155550102"))
        await _frames_of(book, 3)
        doubt = book.doubt(attempt, window.since)
        assert doubt is not None
        assert untagged.id in doubt.detail, doubt
        # Not in a window that began after that call's frames.
        assert book.doubt(attempt, book.clock() + 1) is None
    finally:
        book.close()
        await monitor.close()


async def _frames_of(book: WitnessBook, conversations: int) -> None:
    """Wait until the book holds frames naming a customer for this many conversations."""
    for _ in range(200):
        named = {
            s.get("id")
            for _, s in book._recent
            if any(p.get("address") for p in (s.get("participants") or []))
        }
        if len(named) >= conversations:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the channel brought no frames with a customer")
