"""The dialing core: check the agent, tag and place the call, follow it, resolve an ambiguity.

Every caller (``Client.dial``, ``AsyncClient.dial``, the CLI's ``call``, the campaign runner, the
HTTP service) goes through :func:`dial`; there is no second copy of "subscribe, then dial".

Cost: a plain dial that goes well sends the token request, the agent check and the POST, nothing
more. A notifications channel is opened only after an ambiguous answer, unless the caller asked
to follow the call (then the agent's topic is subscribed *before* the POST, and with a channel
healthy since then, following needs no catch-up GET).

:func:`dial_sync` is the same dial, not followed, over a synchronous transport (``Client.dial``,
``gcdial call`` without ``--wait``): it runs no event loop unless the create's answer is lost, and
then the same ladder runs on one. Both are built from the steps below (tag, attempt, placed,
lost answer), so the two cannot drift apart.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypedDict

from gcdial._shared import DEFAULT_RESOLVE_TIMEOUT_S, DEFAULT_WRAPUP_TIMEOUT_S
from gcdial.calls import AsyncCalls, CallParams, Calls, CallTarget, async_twin
from gcdial.config import Settings
from gcdial.errors import AgentNotReadyError, CallEffect, CallOutcomeUnknownError, CallRulesError
from gcdial.http import ApiTransport, AsyncApiTransport, ServerClock, async_sleep
from gcdial.resolve import (
    UNTAGGED_SKEW_S,
    AnalyticsAnswer,
    Attempt,
    Evidence,
    LadderFacts,
    LadderSettings,
    Resolution,
    Verdict,
    decide,
    match_snapshot,
    new_attempt_id,
    query_details,
    search_interval,
)

if TYPE_CHECKING:
    import asyncio

    from gcdial.gate import CallGate

    # Types only: a dial that is not followed never loads the monitor (start-up time).
    from gcdial.models import CallCreated
    from gcdial.monitor.events import CallEvent
    from gcdial.monitor.follow import CallMonitor
    from gcdial.monitor.outcome import Outcome
    from gcdial.monitor.wrapup import WrapupWait

__all__ = [
    "DEFAULT_RESOLVE_TIMEOUT_S",
    "Dial",
    "DialOptions",
    "dial",
    "dial_sync",
    "keep_resolving",
    "resolve_attempt",
]


Clock = Callable[[], float]
AsyncSleep = Callable[[float], Awaitable[None]]
_RETRY_STATUSES: Final = frozenset({"rate_limited", "error", "incomplete"})


class DialOptions(TypedDict, total=False):
    """The keyword options of ``Client.dial`` / ``AsyncClient.dial``; see :func:`dial`."""

    check_agent: bool
    follow: bool
    timeout_s: float | None
    wrapup: bool
    wrapup_timeout_s: float
    resolve: bool
    resolve_timeout_s: float
    analytics: bool
    attempt_id: str | None
    on_event: Callable[[CallEvent], None] | None
    clock: Clock
    sleep: AsyncSleep
    gate: CallGate | None


@dataclass
class Dial:
    """One dial's handle: the attempt, the conversation once known, events, outcome, resolution.

    ``resolution.verdict`` is ``placed`` (with ``conversation_id``), ``not_placed`` (proven: safe
    to dial again) or ``unknown`` (a person must check; ``resolution.evidence`` says what was
    seen). ``outcome`` and ``events`` are filled when the call was followed. ``ambiguity`` is the
    CallOutcomeUnknownError the create raised, if it did.
    """

    attempt: Attempt
    params: CallParams
    target: CallTarget
    resolution: Resolution
    conversation_id: str | None = None
    events: list[CallEvent] = field(default_factory=list)
    outcome: Outcome | None = None
    ambiguity: CallOutcomeUnknownError | None = None
    resolved_in_s: float | None = None
    """After an ambiguous create: how long the ladder took to its verdict (the injected clock)."""
    ambiguous_at: float | None = None
    """After an ambiguous create: the injected clock's reading when its answer was lost."""
    health_mark: tuple[int, int] | None = None
    """After an ambiguous create: the monitor's health mark the ladder holds the channel to."""

    @property
    def attempt_id(self) -> str:
        """The attempt id sent in the call's attributes."""
        return self.attempt.attempt_id

    @property
    def placed(self) -> bool:
        """Whether the call is known to exist."""
        return self.resolution.verdict is Verdict.PLACED

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "attemptId": self.attempt_id,
            "agentId": self.attempt.agent_id,
            "number": self.attempt.number,
            "conversationId": self.conversation_id,
            "resolution": self.resolution.to_dict(),
            "outcome": self.outcome.to_dict() if self.outcome is not None else None,
        }


async def _sleep_or_event(event: asyncio.Event, seconds: float, sleep: AsyncSleep) -> None:
    """Return when ``event`` is set or after ``seconds`` (on the injected sleep)."""
    import asyncio  # on an event loop, so already imported (see gcdial.http.async_sleep)

    if event.is_set() or seconds <= 0:
        return
    waiter = asyncio.ensure_future(event.wait())
    sleeper = asyncio.ensure_future(sleep(seconds))
    try:
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, sleeper):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def resolve_attempt(
    transport: AsyncApiTransport,
    attempt: Attempt,
    *,
    monitor: CallMonitor | None,
    health_mark: tuple[int, int] | None,
    ladder: LadderSettings,
    timeout_s: float,
    analytics: bool = True,
    clock: Clock = time.monotonic,
    sleep: AsyncSleep = async_sleep,
    started: float | None = None,
    notes: tuple[Evidence, ...] = (),
    long_past: bool = False,
) -> Resolution:
    """Run the ladder for ``attempt`` until a verdict, or until ``timeout_s`` (then unknown).

    ``monitor`` should already watch the agent; ``health_mark`` is its :meth:`health_mark` taken
    when the ambiguous answer came (None: no healthy channel, so never ``not_placed``).
    ``started`` is the injected clock's reading at the ambiguous answer (default: now).
    ``long_past``: the attempt is long over (see :class:`gcdial.resolve.LadderFacts`), as when
    ``gcdial resolve`` looks at it later; pass ``started`` far enough back that it is settled.
    """
    import asyncio  # on an event loop, so already imported (see gcdial.http.async_sleep)

    t0 = clock() if started is None else started
    found = asyncio.Event()
    live: list[Evidence] = []

    def on_snapshot(snapshot: Any) -> None:
        if live:
            return
        evidence = match_snapshot(attempt, snapshot)
        if evidence is not None:
            live.append(evidence)
            found.set()

    stop = monitor.listen(on_snapshot) if monitor is not None else None
    details: AnalyticsAnswer | None = None
    try:
        while not live:
            elapsed = clock() - t0
            settled = elapsed >= ladder.settle_s
            left = timeout_s - elapsed
            due = settled or left <= 0
            if analytics and due and (details is None or details.status in _RETRY_STATUSES):
                interval = search_interval(attempt, transport.server_clock.now())
                details = await query_details(
                    transport,
                    attempt,
                    interval,
                    page_size=ladder.page_size,
                    max_pages=ladder.max_pages,
                )
                if details.status == "forbidden":
                    analytics = False
                if details.status == "found" or (details.status == "not_found" and settled):
                    break
            if left <= 0 or live:
                break
            if analytics and not settled:
                pause = ladder.settle_s - elapsed
            elif analytics:
                pause = ladder.retry_s
            else:
                pause = left
            await _sleep_or_event(found, min(pause, left), sleep)
    finally:
        if stop is not None:
            stop()
    healthy = monitor is not None and monitor.healthy_since(health_mark)
    facts = LadderFacts(
        live=live[0] if live else None,
        details=details,
        settled=clock() - t0 >= ladder.settle_s,
        channel_healthy=healthy,
        settle_s=ladder.settle_s,
        notes=notes,
        long_past=long_past,
    )
    return decide(facts)


async def keep_resolving(
    transport: AsyncApiTransport,
    handle: Dial,
    *,
    monitor: CallMonitor | None,
    settings: Settings,
    timeout_s: float,
    clock: Clock = time.monotonic,
    sleep: AsyncSleep = async_sleep,
) -> Resolution:
    """Go on with the ladder of a dial whose ``resolve_timeout_s`` ran out on ``unknown``.

    The ladder goes on from the moment the create's answer was lost, held to the same channel
    health mark: ``monitor`` must be the one the dial used (a long-lived monitor shared by many
    dials, as a service has); with another one, or None, the verdict is never ``not_placed``.
    ``timeout_s`` counts from the lost answer, like ``resolve_timeout_s``. Pass the dial's own
    ``clock`` and ``sleep``. Returns the handle's resolution, now also set on the handle.
    """
    if handle.ambiguous_at is None or handle.resolution.verdict is not Verdict.UNKNOWN:
        return handle.resolution
    if monitor is not None:
        await monitor.watch_agent(handle.attempt.agent_id)
    handle.resolution = await resolve_attempt(
        transport,
        handle.attempt,
        monitor=monitor,
        health_mark=handle.health_mark if monitor is not None else None,
        ladder=LadderSettings(settle_s=settings.analytics_settle_s),
        timeout_s=timeout_s,
        clock=clock,
        sleep=sleep,
        started=handle.ambiguous_at,
        notes=handle.resolution.evidence[:1],
    )
    handle.conversation_id = handle.resolution.conversation_id
    handle.resolved_in_s = clock() - handle.ambiguous_at
    return handle.resolution


@contextlib.asynccontextmanager
async def _monitor_for(
    transport: AsyncApiTransport,
    given: CallMonitor | None,
    settings: Settings,
    clock: Clock,
    sleep: AsyncSleep,
) -> AsyncIterator[CallMonitor]:
    if given is not None:
        yield given
        return
    # start-up: a call that is neither followed nor ambiguous never loads the monitor
    from gcdial.monitor.channel import ChannelSettings
    from gcdial.monitor.follow import CallMonitor

    channel_settings = ChannelSettings(verify_tls=settings.verify_tls)
    async with CallMonitor(
        transport, channel_settings=channel_settings, clock=clock, sleep=sleep
    ) as monitor:
        yield monitor


async def dial(
    calls: AsyncCalls,
    transport: AsyncApiTransport,
    settings: Settings,
    agent: str,
    params: CallParams,
    *,
    check_agent: bool = True,
    follow: bool = False,
    monitor: CallMonitor | None = None,
    timeout_s: float | None = None,
    wrapup: bool = False,
    wrapup_timeout_s: float = DEFAULT_WRAPUP_TIMEOUT_S,
    resolve: bool = True,
    resolve_timeout_s: float = DEFAULT_RESOLVE_TIMEOUT_S,
    analytics: bool = True,
    attempt_id: str | None = None,
    on_target: Callable[[CallTarget, Attempt], None] | None = None,
    on_placed: Callable[[str], None] | None = None,
    on_event: Callable[[CallEvent], None] | None = None,
    clock: Clock = time.monotonic,
    sleep: AsyncSleep = async_sleep,
    gate: CallGate | None = None,
) -> Dial:
    """Check the agent, place ``params`` tagged with a fresh attempt id, follow, resolve.

    Raises before sending (InputError, InvalidPhoneNumberError, AgentNotReadyError, ...) and for
    definite refusals (a 4xx: nothing was placed). An ambiguous create does not raise: the handle's
    resolution says placed / not_placed / unknown. ``on_target`` is called once the agent is known
    and just before the POST (record the attempt there: a journal, a log); ``on_placed`` with the
    conversation id as soon as it is known.

    ``wrapup`` (with ``follow``): after the call ends, wait up to ``wrapup_timeout_s`` for the
    agent's wrap-up and return it in ``outcome.wrapup``. Only calls expected to have one are
    waited for: those placed for a queue (``params.queue``, else the setting ``queue_id``), or any
    call with the setting ``wrapup_non_acd``.

    ``gate`` (opt-in; None: no gate, as before): asked once the agent is known and before the
    POST (:class:`gcdial.gate.SingleCallGate`: the calling rules, the agent's row of live
    calls). A refusal raises (:class:`~gcdial.errors.CallRulesError`, or
    :class:`~gcdial.errors.AgentNotReadyError` with reason ``agent_busy``) and sends nothing.
    The agent is released when the call is not placed, or was followed to its end; a call that
    is placed and not followed keeps its row (the gate's store bounds how long).
    """
    attempt_id, params, tagged = _tag(calls, settings, params, attempt_id)
    wait_wrapup: WrapupWait | None = None
    if wrapup:
        # Imported here: only a followed call waits for a wrap-up (start-up time of one call).
        from gcdial.monitor.wrapup import WrapupWait

        wait_wrapup = WrapupWait(
            timeout_s=wrapup_timeout_s,
            acd=params.queue is not None,
            non_acd=settings.wrapup_non_acd,
        )
    target = await calls.target(agent, check_agent=check_agent)
    async with contextlib.AsyncExitStack() as stack:
        live_monitor: CallMonitor | None = None
        mark: tuple[int, int] | None = None
        if follow:
            live_monitor = await stack.enter_async_context(
                _monitor_for(transport, monitor, settings, clock, sleep)
            )
            assert target.agent_id is not None  # target() always looks the agent up
            await live_monitor.watch_agent(target.agent_id)
            mark = live_monitor.health_mark()
        handle = _handle(attempt_id, params, tagged, target, settings, transport.server_clock)
        if gate is not None:
            _admit(gate, handle)
            stack.enter_context(_gated(gate, handle, followed=follow))
        if on_target is not None:
            on_target(target, handle.attempt)
        try:
            created = await calls.send(target, tagged)
        except CallOutcomeUnknownError as exc:
            started = clock()
            if not resolve:
                _lost(handle, exc, resolved=False)
                return handle
            if live_monitor is None:
                live_monitor = await stack.enter_async_context(
                    _monitor_for(transport, monitor, settings, clock, sleep)
                )
                await live_monitor.watch_agent(handle.attempt.agent_id)
                mark = live_monitor.health_mark()
            elif not live_monitor.healthy_since(mark):
                mark = None
            await _settle_lost_answer(
                transport,
                handle,
                _lost(handle, exc, resolved=True),
                monitor=live_monitor,
                mark=mark,
                settings=settings,
                timeout_s=resolve_timeout_s,
                analytics=analytics,
                clock=clock,
                sleep=sleep,
                started=started,
            )
            catch_up = True
        else:
            _placed(handle, created)
            catch_up = live_monitor is None or not live_monitor.healthy_since(mark)
        if handle.conversation_id is None:
            return handle
        if on_placed is not None:
            on_placed(handle.conversation_id)
        if follow and live_monitor is not None:

            def record(event: CallEvent) -> None:
                handle.events.append(event)
                if on_event is not None:
                    on_event(event)

            handle.outcome = await live_monitor.wait(
                handle.conversation_id,
                agent_id=handle.attempt.agent_id,
                timeout_s=timeout_s,
                on_event=record,
                catch_up=catch_up,
                wrapup=wait_wrapup,
            )
        return handle


def dial_sync(
    calls: Calls,
    transport: ApiTransport,
    settings: Settings,
    agent: str,
    params: CallParams,
    *,
    check_agent: bool = True,
    resolve: bool = True,
    resolve_timeout_s: float = DEFAULT_RESOLVE_TIMEOUT_S,
    analytics: bool = True,
    attempt_id: str | None = None,
    on_target: Callable[[CallTarget, Attempt], None] | None = None,
    on_placed: Callable[[str], None] | None = None,
    clock: Clock = time.monotonic,
    sleep: AsyncSleep = async_sleep,
    gate: CallGate | None = None,
) -> Dial:
    """:func:`dial` without following the call, over a synchronous transport (blocks).

    For one call (``Client.dial``, ``gcdial call`` without ``--wait``) an event loop, anyio and
    the async HTTP stack cost more CPU than the call itself; here the agent check and the POST
    are plain requests. When the create's answer is lost, the ladder runs on an event loop over
    the same HTTP client, token and rate budget (:func:`gcdial.calls.async_twin`), as in
    :func:`dial`; ``clock`` and ``sleep`` time it.
    """
    attempt_id, params, tagged = _tag(calls, settings, params, attempt_id)
    target = calls.target(agent, check_agent=check_agent)
    handle = _handle(attempt_id, params, tagged, target, settings, transport.server_clock)

    def place() -> Dial:
        return _place_sync(
            calls, transport, settings, handle, tagged, target, on_target, on_placed,
            resolve, resolve_timeout_s, analytics, clock, sleep,
        )  # fmt: skip

    if gate is None:
        return place()
    _admit(gate, handle)
    with _gated(gate, handle):
        return place()


def _place_sync(
    calls: Calls,
    transport: ApiTransport,
    settings: Settings,
    handle: Dial,
    tagged: CallParams,
    target: CallTarget,
    on_target: Callable[[CallTarget, Attempt], None] | None,
    on_placed: Callable[[str], None] | None,
    resolve: bool,
    resolve_timeout_s: float,
    analytics: bool,
    clock: Clock,
    sleep: AsyncSleep,
) -> Dial:
    if on_target is not None:
        on_target(target, handle.attempt)
    try:
        created = calls.send(target, tagged)
    except CallOutcomeUnknownError as exc:
        started = clock()
        if not resolve:
            _lost(handle, exc, resolved=False)
            return handle
        note = _lost(handle, exc, resolved=True)

        async def ladder() -> None:
            twin = async_twin(transport)
            async with twin.http, _monitor_for(twin, None, settings, clock, sleep) as monitor:
                await monitor.watch_agent(handle.attempt.agent_id)
                await _settle_lost_answer(
                    twin,
                    handle,
                    note,
                    monitor=monitor,
                    mark=monitor.health_mark(),
                    settings=settings,
                    timeout_s=resolve_timeout_s,
                    analytics=analytics,
                    clock=clock,
                    sleep=sleep,
                    started=started,
                )

        import asyncio  # only a lost answer needs an event loop (see gcdial.http.async_sleep)

        asyncio.run(ladder())
    else:
        _placed(handle, created)
    if handle.conversation_id is not None and on_placed is not None:
        on_placed(handle.conversation_id)
    return handle


def _admit(gate: CallGate, handle: Dial) -> None:
    """Ask the gate; its refusal raises (nothing was sent)."""
    attempt = handle.attempt
    refusal = gate.admit_call(attempt.agent_id, attempt.attempt_id, attempt.number)
    if refusal is None:
        return
    if refusal.reason in ("agent_busy", "store_unavailable"):
        raise AgentNotReadyError(
            f"Refused, nothing was dialed: {refusal.message}.",
            agent=attempt.agent_id,
            reason=refusal.reason,
            hint="Wait until that call ends, or dial through another agent."
            if refusal.reason == "agent_busy"
            else "Check that the gate's store can be written.",
        )
    local = refusal.local_time or "unknown (no time zone is known for the number)"
    raise CallRulesError(
        f"Refused, nothing was dialed: {refusal.message}. The customer's local time: {local}.",
        rule=refusal.reason,
        local_time=refusal.local_time,
    )


def _settle_gate(gate: CallGate, handle: Dial, followed: bool) -> None:
    """After the dial: free the agent unless its call may still be live (placed and not
    followed to its end, or its outcome unknown)."""
    if handle.conversation_id is not None:
        if followed and handle.outcome is not None:
            gate.release_call(handle.attempt.attempt_id)
        else:
            gate.bind_call(handle.attempt.attempt_id, handle.conversation_id)
        return
    if handle.resolution.verdict is Verdict.NOT_PLACED or (
        handle.ambiguity is None and handle.resolution.verdict is not Verdict.PLACED
    ):
        gate.release_call(handle.attempt.attempt_id)


@contextlib.contextmanager
def _gated(gate: CallGate, handle: Dial, *, followed: bool = False) -> Iterator[None]:
    """Release the agent when the dial raises having provably placed nothing."""
    try:
        yield
    except BaseException as exc:
        effect = getattr(exc, "call_effect", CallEffect.UNKNOWN)
        if effect is not CallEffect.UNKNOWN and handle.conversation_id is None:
            gate.release_call(handle.attempt.attempt_id)
        raise
    else:
        _settle_gate(gate, handle, followed)


def _tag(
    calls: Calls | AsyncCalls, settings: Settings, params: CallParams, attempt_id: str | None
) -> tuple[str, CallParams, CallParams]:
    """The attempt id, the call (for the setting ``queue_id`` when it names no queue) and that
    call tagged with the attempt id; raises before anything is sent when the call could not be
    sent (a bad number, a bad body)."""
    attempt_id = attempt_id or new_attempt_id()
    if params.queue is None and settings.queue_id is not None:
        params = replace(params, queue=settings.queue_id)
    tagged = params.with_attribute(settings.attempt_attribute, attempt_id)
    calls.validate(tagged)
    return attempt_id, params, tagged


def _handle(
    attempt_id: str,
    params: CallParams,
    tagged: CallParams,
    target: CallTarget,
    settings: Settings,
    server_clock: ServerClock,
) -> Dial:
    """The handle of a dial about to send its POST: the attempt as it will be looked for."""
    assert target.agent_id is not None  # target() always looks the agent up
    number = tagged.body(default_country=settings.default_country).phone_number or params.to
    attempt = Attempt(
        attempt_id=attempt_id,
        agent_id=target.agent_id,
        number=number,
        sent_at=datetime.now(UTC),
        sent_after=server_clock.last,
        attempt_key=settings.attempt_attribute,
        match_after=server_clock.passed(UNTAGGED_SKEW_S),
    )
    return Dial(
        attempt=attempt, params=tagged, target=target, resolution=Resolution(Verdict.UNKNOWN)
    )


def _placed(handle: Dial, created: CallCreated) -> None:
    """Genesys accepted the call: placed, with its conversation id."""
    handle.conversation_id = created.id
    handle.resolution = Resolution(
        Verdict.PLACED,
        (Evidence("create", f"Genesys accepted the call: conversation {created.id}"),),
        created.id,
    )


def _lost(handle: Dial, exc: CallOutcomeUnknownError, *, resolved: bool) -> Evidence:
    """The create's answer was lost: note it on the handle (unknown unless the ladder runs)."""
    handle.ambiguity = exc
    note = Evidence("create", f"the create-call answer was lost: {exc.message}")
    if not resolved:
        handle.resolution = Resolution(Verdict.UNKNOWN, (note,))
    return note


async def _settle_lost_answer(
    transport: AsyncApiTransport,
    handle: Dial,
    note: Evidence,
    *,
    monitor: CallMonitor,
    mark: tuple[int, int] | None,
    settings: Settings,
    timeout_s: float,
    analytics: bool,
    clock: Clock,
    sleep: AsyncSleep,
    started: float,
) -> None:
    """Run the ladder on a lost answer; record its verdict and what :func:`keep_resolving`
    needs to go on (when the answer was lost, the channel's health mark)."""
    handle.resolution = await resolve_attempt(
        transport,
        handle.attempt,
        monitor=monitor,
        health_mark=mark,
        ladder=LadderSettings(settle_s=settings.analytics_settle_s),
        timeout_s=timeout_s,
        analytics=analytics,
        clock=clock,
        sleep=sleep,
        started=started,
        notes=(note,),
    )
    handle.conversation_id = handle.resolution.conversation_id
    handle.resolved_in_s = clock() - started
    handle.ambiguous_at, handle.health_mark = started, mark
