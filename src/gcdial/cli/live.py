"""The live view of a call (``call --wait``, ``watch``, ``demo``): one line per transition.

Events come from :mod:`gcdial.monitor` (notifications WebSocket, or polling when no channel can be
had). For a new call the agent's topic is subscribed *before* the call is placed, so no early
event is missed. Humans get one line per transition with times and, on a terminal, a spinner
while something rings; ``--json`` gets one JSON object per line, the outcome last.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gcdial import dialing
from gcdial.agents import AgentReadiness
from gcdial.calls import CallParams, CallTarget
from gcdial.cli import render
from gcdial.cli.exitcodes import ExitCode, for_outcome
from gcdial.cli.local_gate import UNFOLLOWED_HOLD_S, open_leases, rules_hint
from gcdial.cli.session import Session
from gcdial.client import AsyncClient
from gcdial.dialing import Dial
from gcdial.errors import CallOutcomeUnknownError, CallRulesError, CallWaitTimeoutError
from gcdial.resolve import LONG_PAST_S, Attempt, LadderSettings, Resolution, Verdict

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

    from gcdial.campaign.rules import Rules
    from gcdial.client import Client
    from gcdial.gate import SingleCallGate
    from gcdial.local_leases import LocalAgentLeases
    from gcdial.monitor.events import CallEvent
    from gcdial.monitor.follow import CallMonitor
    from gcdial.monitor.outcome import Outcome
    from gcdial.monitor.wrapup import Wrapup

_ROLE_NAMES = {"agent": "agent", "customer": "customer"}
_OUTCOME_STYLES = {"answered": "bold green", "unknown": "bold yellow"}


def describe_event(event: CallEvent) -> str:
    """A few words for one transition, as a person would say it."""
    from gcdial.monitor.events import EventKind  # here for start-up time: only --wait needs it

    role = event.role.value if event.role is not None else "call"
    words = {
        EventKind.AGENT_ALERTING: "agent's phone is ringing",
        EventKind.AGENT_CONNECTED: "agent answered",
        EventKind.CUSTOMER_DIALING: "dialing the customer",
        EventKind.CUSTOMER_RINGING: "customer's phone is ringing",
        EventKind.CUSTOMER_CONNECTED: "customer answered",
        EventKind.HELD: f"{role} on hold",
        EventKind.RESUMED: f"{role} resumed",
        EventKind.CALL_ENDED: "call ended",
    }
    if event.kind in words:
        return words[event.kind]
    if event.kind is EventKind.WRAPUP and event.wrapup is not None:
        return f"wrap-up: {describe_wrapup(event.wrapup)}"
    if event.kind is EventKind.PARTICIPANT_DISCONNECTED:
        how = event.disconnect_type or "unknown"
        by = f", ended by {event.ended_by}" if event.ended_by else ""
        text = f"{role} disconnected ({how}{by})"
        if event.error is not None:
            from gcdial.monitor.outcome import error_meaning  # start-up time, as EventKind

            text += f": {error_meaning(event.error)}"  # the code: --json, -v
        return text
    return f"{role} {event.state or 'changed'}"


def describe_wrapup(wrapup: Wrapup) -> str:
    """A wrap-up as a person reads it: its name (or code), then the notes."""
    notes = f" ({wrapup.notes})" if wrapup.notes else ""
    via = " [from conversation details]" if wrapup.source == "details" else ""
    return f"{wrapup.label}{notes}{via}"


def describe_outcome(outcome: Outcome) -> str:
    """The outcome in one line: what happened, talk time, why; then the wrap-up, if any."""
    text = f"outcome: {outcome.kind.value}"
    if outcome.reason:
        text = f"{text}: {outcome.reason}"
    elif outcome.talk_seconds is not None:
        text = f"{text}, talked {outcome.talk_seconds:.1f} s"
    if outcome.wrapup is not None:
        text += f"; wrap-up {describe_wrapup(outcome.wrapup)}"
    elif outcome.wrapup_missing:
        text += "; no wrap-up arrived"
    return text


def _waiting_for(event: CallEvent) -> str | None:
    """What a spinner should say after ``event``, or None when nothing is pending."""
    from gcdial.monitor.events import EventKind  # here for start-up time: only --wait needs it

    return {
        EventKind.AGENT_ALERTING: "ringing the agent",
        EventKind.CUSTOMER_DIALING: "dialing the customer",
        EventKind.CUSTOMER_RINGING: "ringing the customer",
        EventKind.CUSTOMER_CONNECTED: "talking",
        EventKind.AGENT_CONNECTED: "connecting",
        EventKind.CALL_ENDED: "waiting for the wrap-up",
    }.get(event.kind)


@dataclass
class LiveView:
    """Prints events as they come: aligned lines for people, JSON lines for scripts."""

    run: Session
    conversation_id: str | None = None
    attempt: Attempt | None = None
    start: datetime | None = None
    status: Status | None = None
    seen: list[CallEvent] = field(default_factory=list)

    @property
    def _console(self) -> Console:
        # While the spinner runs on stderr, lines must go through its console to print cleanly
        # above it; without a spinner (no terminal, or a pipe) they are stdout's result lines.
        return self.run.output.err if self.status is not None else self.run.output.out

    def dialing(self, target: CallTarget, attempt: Attempt) -> None:
        """The agent checked out and the POST is about to leave: say so, remember the attempt."""
        if target.readiness is not None:
            show_readiness(self.run, target.readiness)
        self.attempt = attempt
        if not self.run.output.json_mode:
            self.run.output.say(
                f"attempt {attempt.attempt_id}: dialing {attempt.number}", style="dim"
            )

    def note(self, data: dict[str, Any], text: str) -> None:
        """A line that is not a call event (placed, hung up by --hangup-after, ...)."""
        if self.run.output.json_mode:
            self.run.output.data(data)
        else:
            self.run.output.say(text, style="dim")

    def event(self, event: CallEvent) -> None:
        """Show one transition and update the spinner."""
        self.seen.append(event)
        if self.run.output.json_mode:
            self.run.output.data(event.to_dict())
            return
        from rich.text import Text  # here for start-up time: a --json run never loads rich

        if event.at is not None and self.start is None:
            self.start = event.at
        offset = (
            f"+{(event.at - self.start).total_seconds():5.1f}s"
            if event.at is not None and self.start is not None
            else "       "
        )
        clock = render.clock(event.at, millis=True, zone=True)
        self._console.print(Text.assemble((f"{clock} {offset}  ", "dim"), describe_event(event)))
        if self.status is not None:
            pending = _waiting_for(event)
            self.status.update(f"{pending}..." if pending else "waiting...")

    def outcome(self, outcome: Outcome) -> None:
        """Show the final outcome."""
        if self.run.output.json_mode:
            self.run.output.data(outcome.to_dict())
            return
        from rich.text import Text

        style = _OUTCOME_STYLES.get(outcome.kind.value, "bold red")
        self._console.print(Text(describe_outcome(outcome), style=style))

    @contextlib.contextmanager
    def spinner(self) -> Any:
        """A spinner on stderr while waiting, only when a person watches a terminal."""
        if self.run.output.json_mode or not self.run.output.interactive:
            yield
            return
        with self.run.output.err.status("waiting for the call...") as status:
            self.status = status
            try:
                yield
            finally:
                self.status = None


async def _follow(
    view: LiveView,
    monitor: CallMonitor,
    conversation_id: str,
    *,
    agent_id: str | None,
    timeout_s: float | None,
    on_event: Callable[[CallEvent], None] | None = None,
) -> ExitCode:
    """Follow to the end; print the outcome; the exit code by outcome (124 on timeout)."""

    def show(event: CallEvent) -> None:
        view.event(event)
        if on_event is not None:
            on_event(event)

    with view.spinner():
        try:
            outcome = await monitor.wait(
                conversation_id, agent_id=agent_id, timeout_s=timeout_s, on_event=show
            )
        except CallWaitTimeoutError as exc:
            view.outcome(exc.outcome)
            raise
    view.outcome(outcome)
    return for_outcome(outcome.kind.value)


@contextlib.asynccontextmanager
async def _monitor(run: Session, client: AsyncClient) -> AsyncIterator[CallMonitor]:
    # start-up: `gcdial call` without --wait never loads the monitor and the WebSocket client
    from gcdial.monitor.channel import ChannelSettings
    from gcdial.monitor.follow import CallMonitor

    # The run's one clock: in the sandbox, its simulated time, so that --timeout counts the same
    # seconds as the events' offsets and the talk time printed.
    clock, sleep = run.core_clock()
    async with CallMonitor(
        client.transport,
        channel_settings=ChannelSettings(verify_tls=client.settings.verify_tls),
        clock=clock,
        sleep=sleep,
    ) as monitor:
        yield monitor


def show_readiness(run: Session, readiness: AgentReadiness) -> None:
    """Say that the agent checked out before dialing: station, presence, and any notes."""
    run.output.ok(
        f"agent {readiness.agent.label}: station {readiness.station.name or 'set'}, "
        f"presence {readiness.presence or 'unknown'}"
    )
    for note in readiness.notes:
        run.output.warn(note)


def resolve_command(attempt: Attempt) -> str:
    """The ``gcdial resolve`` command line that re-runs the ladder for ``attempt``."""
    at = attempt.sent_after or attempt.sent_at
    return (
        f"gcdial resolve {attempt.attempt_id} --agent {attempt.agent_id} "
        f"--to {attempt.number} --at {at.astimezone(UTC).isoformat(timespec='seconds')}"
    )


def report_resolution(run: Session, attempt: Attempt, resolution: Resolution) -> ExitCode:
    """Tell what the ladder concluded about an ambiguous create; the exit code for it."""
    for item in resolution.evidence:
        run.output.say(f"  evidence ({item.source}): {item.detail}", style="dim")
    if resolution.verdict is Verdict.PLACED:
        run.output.ok(resolution.summary)
        return ExitCode.OK
    if resolution.verdict is Verdict.NOT_PLACED:
        run.output.ok(resolution.summary)
        return ExitCode.NOT_PLACED
    run.output.warn(
        "still unknown: the call may or may not have been placed; do not dial again yet. "
        "Check the agent's recent conversations (Genesys Cloud > Interactions), or run later: "
        + resolve_command(attempt)
    )
    return ExitCode.OUTCOME_UNKNOWN


@dataclass(frozen=True)
class DialRequest:
    """What ``gcdial call`` asks of the dialing core, as the command line said it."""

    agent: str
    params: CallParams
    check_agent: bool
    follow: bool
    timeout_s: float | None
    hangup_after: float | None
    resolve_timeout_s: float
    wrapup_timeout_s: float = 0.0
    """With ``follow``: how long to wait for the wrap-up once the call is over (0: not at all)."""
    rules: Rules | None = None
    """The calling rules of the call (None: none asked)."""
    time_zone: str | None = None
    """The customer's own time zone (``--timezone``)."""
    window_shown: str = ""
    """The calling window as the user gave it, for a refusal's hint."""


async def _dial(view: LiveView, request: DialRequest) -> ExitCode:
    run = view.run
    clock, sleep = run.core_clock()
    async with run.async_client() as client, contextlib.AsyncExitStack() as stack:
        from gcdial.local_leases import DEFAULT_TTL_S, holding

        leases = open_leases(run.settings(), ttl_s=DEFAULT_TTL_S)
        await stack.enter_async_context(holding(leases))  # renewed while the call is followed
        gate = _gate(request, leases, run)
        monitor = await stack.enter_async_context(_monitor(run, client)) if request.follow else None
        import asyncio  # on an event loop, so already imported (see gcdial.http.async_sleep)

        hang_task: list[asyncio.Task[None]] = []

        def on_placed(conversation_id: str) -> None:
            view.conversation_id = conversation_id
            if monitor is not None:
                assert view.attempt is not None
                view.note(
                    {
                        "event": "placed",
                        "conversationId": conversation_id,
                        "attemptId": view.attempt.attempt_id,
                    },
                    f"call placed: conversation {conversation_id} (followed by {monitor.mode})",
                )

        async def hang_later(conversation_id: str) -> None:
            assert request.hangup_after is not None
            await sleep(request.hangup_after)  # the run's clock: sandbox seconds in the sandbox
            await client.calls.hang_up(conversation_id)
            view.note(
                {"event": "hangup_requested", "conversationId": conversation_id},
                f"hung up after {request.hangup_after:g} s of talk (--hangup-after)",
            )

        from gcdial.monitor.events import EventKind  # here for start-up time, as above

        def on_event(event: CallEvent) -> None:
            view.event(event)
            if (
                request.hangup_after is not None
                and event.kind is EventKind.CUSTOMER_CONNECTED
                and not hang_task
                and view.conversation_id is not None
            ):
                hang_task.append(asyncio.create_task(hang_later(view.conversation_id)))

        try:
            with view.spinner() if request.follow else contextlib.nullcontext():
                handle = await dialing.dial(
                    client.calls,
                    client.transport,
                    client.settings,
                    request.agent,
                    request.params,
                    check_agent=request.check_agent,
                    follow=request.follow,
                    monitor=monitor,
                    timeout_s=request.timeout_s,
                    wrapup=request.wrapup_timeout_s > 0,
                    wrapup_timeout_s=request.wrapup_timeout_s,
                    resolve_timeout_s=request.resolve_timeout_s,
                    on_target=view.dialing,
                    on_placed=on_placed,
                    on_event=on_event,
                    clock=clock,
                    sleep=sleep,
                    gate=gate,
                )
        except CallRulesError as exc:
            exc.hint = rules_hint(exc.rule, request.window_shown)
            raise
        except CallWaitTimeoutError as exc:
            view.outcome(exc.outcome)
            if run.emulator is not None:
                exc.hint = (  # no later command can follow it: the sandbox ends with this one
                    "The sandbox, and the call with it, ends with this command; give a longer "
                    "--timeout (in sandbox seconds) to follow a sandbox call to its end."
                )
            raise
        finally:
            for task in hang_task:
                if not task.done():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return _report(view, handle)


def _report(view: LiveView, handle: Dial) -> ExitCode:
    run = view.run
    if handle.ambiguity is not None:
        run.output.warn(f"the create-call answer was lost: {handle.ambiguity.message}")
        code = report_resolution(run, handle.attempt, handle.resolution)
    else:
        code = ExitCode.OK
        if not view.run.output.json_mode and handle.outcome is None:
            run.output.ok(
                f"call placed (accepted by Genesys Cloud): conversation {handle.conversation_id}"
            )
    if handle.outcome is not None:
        view.outcome(handle.outcome)
        code = for_outcome(handle.outcome.kind.value)
    if run.output.json_mode:
        if handle.outcome is None:
            run.output.result(
                {"id": handle.conversation_id, "placed": handle.placed, **handle.to_dict()}
            )
    elif handle.conversation_id is not None:
        from rich.text import Text

        run.output.result(None, Text(handle.conversation_id))
        if handle.outcome is None and run.emulator is not None:
            # The sandbox ends with this command: no later command can find the call.
            run.output.say(
                "the sandbox ended with this command, so the call cannot be followed later: "
                "add --wait to follow a sandbox call to its end",
                style="dim",
            )
        elif handle.outcome is None:
            run.output.say(
                f"follow it with: gcdial watch {handle.conversation_id}   "
                f"(or gcdial status {handle.conversation_id})",
                style="dim",
            )
    return code


async def _follow_existing(view: LiveView, *, timeout_s: float | None) -> ExitCode:
    assert view.conversation_id is not None
    async with view.run.async_client() as client, _monitor(view.run, client) as monitor:
        return await _follow(
            view, monitor, view.conversation_id, agent_id=None, timeout_s=timeout_s
        )


def interrupted_while_placing(attempt: Attempt) -> CallOutcomeUnknownError:
    """Ctrl-C while the create-call POST may have been on its way: the outcome is unknown."""
    return CallOutcomeUnknownError(
        method="POST",
        url=f"attempt {attempt.attempt_id}",
        body={"phoneNumber": attempt.number},
        sent_at=attempt.sent_at,
        cause=None,
        reason="interrupted (Ctrl-C) while the call request may have been on its way; "
        f"check with: {resolve_command(attempt)}",
    )


def _place(view: LiveView, request: DialRequest) -> ExitCode:
    """One call, not followed: plain requests, no event loop (see :func:`dialing.dial_sync`)."""
    run = view.run
    clock, sleep = run.core_clock()
    client = run.client()
    leases = open_leases(run.settings(), ttl_s=UNFOLLOWED_HOLD_S)
    try:
        handle = _place_gated(view, request, client, _gate(request, leases, run), clock, sleep)
    except CallRulesError as exc:
        exc.hint = rules_hint(exc.rule, request.window_shown)
        raise
    finally:
        leases.close()
    return _report(view, handle)


def _gate(request: DialRequest, leases: LocalAgentLeases, run: Session) -> SingleCallGate:
    from gcdial.gate import SingleCallGate

    def call_over(conversation_id: str) -> bool:
        """Whether an earlier unfollowed call holding the agent has ended (asked of Genesys)."""
        from gcdial.errors import NotFoundError

        try:
            return run.client().calls.get(conversation_id).is_over
        except NotFoundError:
            return True

    return SingleCallGate(request.rules, leases, time_zone=request.time_zone, call_over=call_over)


def _place_gated(
    view: LiveView,
    request: DialRequest,
    client: Client,
    gate: SingleCallGate,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
) -> Dial:
    return dialing.dial_sync(
        client.calls,
        client.transport,
        client.settings,
        request.agent,
        request.params,
        check_agent=request.check_agent,
        resolve_timeout_s=request.resolve_timeout_s,
        on_target=view.dialing,
        on_placed=lambda conversation_id: setattr(view, "conversation_id", conversation_id),
        clock=clock,
        sleep=sleep,
        gate=gate,
    )


def _loop(work: Coroutine[Any, Any, ExitCode]) -> ExitCode:
    """Run ``work`` on an event loop; asyncio is imported here, for start-up time: a call that is
    not followed runs none (see :func:`_place`)."""
    import asyncio

    return asyncio.run(work)


def _run(view: LiveView, work: Callable[[], ExitCode]) -> ExitCode:
    """Run the dial or the follow; on Ctrl-C, say what became of the call."""
    try:
        return work()
    except KeyboardInterrupt:
        if view.conversation_id is None and view.attempt is not None:
            raise interrupted_while_placing(view.attempt) from None
        if view.conversation_id is not None:
            if view.run.emulator is not None:
                view.run.output.warn(
                    "stopped; the sandbox emulator stops with gcdial, so its call ended too"
                )
            else:
                view.run.output.warn(
                    f"stopped following; the call goes on (gcdial hangup {view.conversation_id})"
                )
        raise


def dial_and_report(run: Session, request: DialRequest) -> ExitCode:
    """Dial through the core (following the call with ``request.follow``); the exit code."""
    view = LiveView(run)
    if not request.follow:
        return _run(view, lambda: _place(view, request))
    return _run(view, lambda: _loop(_dial(view, request)))


def follow_existing(run: Session, conversation_id: str, *, timeout_s: float | None) -> ExitCode:
    """Follow a call placed elsewhere to its outcome."""
    view = LiveView(run, conversation_id=conversation_id)
    return _run(view, lambda: _loop(_follow_existing(view, timeout_s=timeout_s)))


@dataclass(frozen=True)
class ResolveRequest:
    """What ``gcdial resolve`` asks: the attempt (by id, or by number), whose, and when."""

    attempt_id: str | None
    agent: str
    to: str | None
    at: datetime
    window_s: float


async def _resolve_later(run: Session, request: ResolveRequest) -> ExitCode:
    attempt_id, agent, to, at = request.attempt_id, request.agent, request.to, request.at
    async with run.async_client() as client:
        agent_id = (await client.calls.target(agent, check_agent=False)).agent_id
        assert agent_id is not None
        number = (
            CallParams(to=to).body(default_country=client.settings.default_country).phone_number
            if to
            else ""
        )
        attempt = Attempt(
            attempt_id=attempt_id or "",
            agent_id=agent_id,
            number=number or "",
            sent_at=at,
            sent_after=at - timedelta(seconds=request.window_s),
            # By number: no attempt tag is looked for, every call of the agent is a candidate.
            attempt_key=client.settings.attempt_attribute if attempt_id else "",
        )
        await client.agents.get(agent_id)  # a first response: the server's clock (Date)
        server_now = client.transport.server_clock.now() or datetime.now(UTC)
        settle = client.settings.analytics_settle_s
        age = (server_now - at).total_seconds()
        resolution = await dialing.resolve_attempt(
            client.transport,
            attempt,
            monitor=None,
            health_mark=None,
            ladder=LadderSettings(settle_s=settle),
            timeout_s=0.0,
            started=-age,
            clock=lambda: 0.0,
            long_past=age >= settle + LONG_PAST_S,
        )
    if run.output.json_mode:
        run.output.result({"attempt": attempt.to_dict(), **resolution.to_dict()})
    return report_resolution(run, attempt, resolution)


def resolve_later(run: Session, request: ResolveRequest) -> ExitCode:
    """``gcdial resolve``: the ladder's details step for an earlier attempt; the exit code."""
    return _loop(_resolve_later(run, request))
