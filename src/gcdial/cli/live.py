"""The live view of a call (``call --wait``, ``watch``, ``demo``): one line per transition.

Events come from :mod:`gcdial.monitor` (notifications WebSocket, or polling when no channel can be
had). For a new call the agent's topic is subscribed *before* the call is placed, so no early
event is missed. Humans get one line per transition with times and, on a terminal, a spinner
while something rings; ``--json`` gets one JSON object per line, the outcome last.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.status import Status
from rich.text import Text

from gcdial.cli import render
from gcdial.cli.exitcodes import ExitCode, for_outcome
from gcdial.cli.session import Session

if TYPE_CHECKING:
    from gcdial.client import AsyncClient
    from gcdial.http import PreparedRequest
    from gcdial.monitor.events import CallEvent
    from gcdial.monitor.follow import CallMonitor
    from gcdial.monitor.outcome import Outcome

_ROLE_NAMES = {"agent": "agent", "customer": "customer"}
_OUTCOME_STYLES = {"answered": "bold green", "unknown": "bold yellow"}


def describe_event(event: CallEvent) -> str:
    """A few words for one transition, as a person would say it."""
    from gcdial.monitor.events import EventKind

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
    if event.kind is EventKind.PARTICIPANT_DISCONNECTED:
        how = event.disconnect_type or "unknown"
        by = f", ended by {event.ended_by}" if event.ended_by else ""
        text = f"{role} disconnected ({how}{by})"
        if event.error is not None and event.error.code:
            text += f" [{event.error.code}]"
        return text
    return f"{role} {event.state or 'changed'}"


def describe_outcome(outcome: Outcome) -> str:
    """The outcome in one line: what happened, talk time, why."""
    text = f"outcome: {outcome.kind.value}"
    if outcome.reason:
        return f"{text}: {outcome.reason}"
    if outcome.talk_seconds is not None:
        return f"{text}, talked {outcome.talk_seconds:.1f} s"
    return text


def _waiting_for(event: CallEvent) -> str | None:
    """What a spinner should say after ``event``, or None when nothing is pending."""
    from gcdial.monitor.events import EventKind

    return {
        EventKind.AGENT_ALERTING: "ringing the agent",
        EventKind.CUSTOMER_DIALING: "dialing the customer",
        EventKind.CUSTOMER_RINGING: "ringing the customer",
        EventKind.CUSTOMER_CONNECTED: "talking",
        EventKind.AGENT_CONNECTED: "connecting",
    }.get(event.kind)


@dataclass
class LiveView:
    """Prints events as they come: aligned lines for people, JSON lines for scripts."""

    run: Session
    conversation_id: str | None = None
    placing: PreparedRequest | None = None
    start: datetime | None = None
    status: Status | None = None
    seen: list[CallEvent] = field(default_factory=list)

    @property
    def _console(self) -> Console:
        # While the spinner runs on stderr, lines must go through its console to print cleanly
        # above it; without a spinner (no terminal, or a pipe) they are stdout's result lines.
        return self.run.output.err if self.status is not None else self.run.output.out

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
    from gcdial.monitor.follow import CallWaitTimeoutError

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
async def _monitor(client: AsyncClient) -> AsyncIterator[CallMonitor]:
    from gcdial.monitor.follow import CallMonitor

    async with CallMonitor(client.transport) as monitor:
        yield monitor


async def _place_and_follow(
    view: LiveView,
    agent: str,
    details: dict[str, Any],
    *,
    check_agent: bool,
    timeout_s: float | None,
    hangup_after: float | None,
) -> ExitCode:
    from gcdial.agents import is_email
    from gcdial.cli.call_cmd import show_readiness
    from gcdial.monitor.events import EventKind

    run = view.run
    async with run.async_client() as client:
        if check_agent:
            readiness = await client.agents.check(agent)
            agent_id = readiness.agent.id
            show_readiness(run, readiness)
        elif is_email(agent):
            agent_id = (await client.agents.get(agent)).id
        else:
            agent_id = agent.strip()
        async with _monitor(client) as monitor:
            # Subscribe before dialing, so the first ring is not missed.
            await monitor.watch_agent(agent_id)
            view.placing = await client.calls.build_create_request(
                agent_id, resolve=False, **details
            )
            created = await client.calls.create(agent_id, check_agent=False, **details)
            view.placing = None
            view.conversation_id = created.id
            view.note(
                {"event": "placed", "conversationId": created.id, "agentId": agent_id},
                f"call placed: conversation {created.id} (followed by {monitor.mode})",
            )
            if not run.output.json_mode:
                run.output.result(None, Text(created.id))
            hang_task: list[asyncio.Task[None]] = []

            async def hang_later() -> None:
                assert hangup_after is not None
                await asyncio.sleep(hangup_after)
                await client.calls.hang_up(created.id)
                view.note(
                    {"event": "hangup_requested", "conversationId": created.id},
                    f"hung up after {hangup_after:g} s of talk (--hangup-after)",
                )

            def on_event(event: CallEvent) -> None:
                if (
                    hangup_after is not None
                    and event.kind is EventKind.CUSTOMER_CONNECTED
                    and not hang_task
                ):
                    hang_task.append(asyncio.create_task(hang_later()))

            try:
                return await _follow(
                    view,
                    monitor,
                    created.id,
                    agent_id=agent_id,
                    timeout_s=timeout_s,
                    on_event=on_event,
                )
            finally:
                for task in hang_task:
                    if not task.done():
                        task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task


async def _follow_existing(view: LiveView, *, timeout_s: float | None) -> ExitCode:
    assert view.conversation_id is not None
    async with view.run.async_client() as client, _monitor(client) as monitor:
        return await _follow(
            view, monitor, view.conversation_id, agent_id=None, timeout_s=timeout_s
        )


def _run(view: LiveView, work: Coroutine[Any, Any, ExitCode]) -> ExitCode:
    """Run the async part; on Ctrl-C, remind that the call itself goes on."""
    try:
        return asyncio.run(work)
    except KeyboardInterrupt:
        if view.placing is not None:
            from gcdial.cli.call_cmd import interrupted_while_placing

            raise interrupted_while_placing(view.placing) from None
        if view.conversation_id is not None:
            view.run.output.warn(
                f"stopped following; the call goes on (gcdial hangup {view.conversation_id})"
            )
        raise


def place_and_follow(
    run: Session,
    agent: str,
    details: dict[str, Any],
    *,
    check_agent: bool,
    timeout_s: float | None,
    hangup_after: float | None,
) -> ExitCode:
    """Place the call with the agent's topic already subscribed, then follow it to its outcome."""
    view = LiveView(run)
    return _run(
        view,
        _place_and_follow(
            view,
            agent,
            details,
            check_agent=check_agent,
            timeout_s=timeout_s,
            hangup_after=hangup_after,
        ),
    )


def follow_existing(run: Session, conversation_id: str, *, timeout_s: float | None) -> ExitCode:
    """Follow a call placed elsewhere to its outcome."""
    view = LiveView(run, conversation_id=conversation_id)
    return _run(view, _follow_existing(view, timeout_s=timeout_s))
