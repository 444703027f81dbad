"""``gcdial status``, ``hangup`` and ``watch``: look at, end and follow calls placed earlier.

``watch ID`` follows one call to its outcome (the exit code tells it); ``watch --agent X`` follows
every call of an agent, one after the other or at once, until Ctrl-C.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from gcdial.cli.options import JsonOpt, SandboxOpt, VerboseOpt
from gcdial.cli.session import Session, refuse_sandbox, session

if TYPE_CHECKING:
    from gcdial.monitor.events import CallEvent
    from gcdial.monitor.outcome import Outcome

ConversationArg = Annotated[
    str, typer.Argument(help="Conversation id (as `gcdial call` printed it).", show_default=False)
]

SANDBOX_WATCH_WHY = (
    "--sandbox starts a new, empty emulator for this one command, so a call placed by another "
    "command is not in it"
)
"""Why a command given the id of an earlier command's call cannot work under --sandbox."""
SANDBOX_WATCH_HINT = (
    "Place and follow a call in one command: `gcdial --sandbox call +14155550100 --agent "
    "alice@example.com --wait`; or keep an emulator running with `gcdial emulator serve` and "
    "point each command at it with --base-url."
)


def status(
    ctx: typer.Context,
    conversation_id: ConversationArg,
    json: JsonOpt = False,
    sandbox: SandboxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show a call's participants, their states and times (UTC)."""
    from gcdial.cli.render import conversation_summary, conversation_table

    with session(ctx, json=json, sandbox=sandbox, verbose=verbose) as run:
        refuse_sandbox(ctx, sandbox, "status", SANDBOX_WATCH_WHY, SANDBOX_WATCH_HINT)
        conversation = run.client().calls.get(conversation_id)
        run.output.result(conversation.to_wire(), conversation_table(conversation))
        if not run.output.json_mode:
            run.output.say(conversation_summary(conversation))


def hangup(
    ctx: typer.Context,
    conversation_id: ConversationArg,
    json: JsonOpt = False,
    sandbox: SandboxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Hang up a call for every participant; says so when the call had already ended."""
    with session(ctx, json=json, sandbox=sandbox, verbose=verbose) as run:
        refuse_sandbox(ctx, sandbox, "hangup", SANDBOX_WATCH_WHY, SANDBOX_WATCH_HINT)
        calls = run.client().calls
        if calls.get(conversation_id).is_over:
            run.output.say(f"conversation {conversation_id} had already ended; nothing to hang up")
            run.output.result({"id": conversation_id, "hungUp": False, "alreadyEnded": True})
            return
        calls.hang_up(conversation_id)
        run.output.ok(f"hung up conversation {conversation_id}")
        run.output.result({"id": conversation_id, "hungUp": True})


def watch(
    ctx: typer.Context,
    conversation_id: Annotated[
        str | None,
        typer.Argument(
            help="Conversation id (as `gcdial call` printed it); or give --agent.",
            show_default=False,
        ),
    ] = None,
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent",
            "-a",
            help="Follow every call of this agent (user id or email) until Ctrl-C.",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", help="Stop watching after S seconds.", show_default=False),
    ] = None,
    json: JsonOpt = False,
    sandbox: SandboxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Follow a call placed elsewhere until it ends (the exit code tells the outcome), or with
    --agent every call of an agent until Ctrl-C (exit 0).
    """
    from gcdial.errors import InputError

    with session(ctx, json=json, sandbox=sandbox, verbose=verbose) as run:
        refuse_sandbox(ctx, sandbox, "watch", SANDBOX_WATCH_WHY, SANDBOX_WATCH_HINT)
        if timeout is not None and not timeout > 0:
            raise InputError(f"--timeout must be a positive number of seconds, not {timeout:g}.")
        if (conversation_id is None) == (agent is None):
            raise InputError(
                "Give either a conversation id or --agent, not both and not neither.",
                hint="`gcdial watch ID` follows one call; `gcdial watch --agent EMAIL` follows "
                "every call of an agent.",
            )
        if agent is not None:
            watch_agent(run, agent, timeout_s=timeout)
            return
        from gcdial.cli.live import follow_existing

        assert conversation_id is not None
        code = follow_existing(run, conversation_id, timeout_s=timeout)
        raise typer.Exit(int(code))


def watch_agent(run: Session, agent: str, *, timeout_s: float | None) -> None:
    """Print every call event of ``agent`` and each call's outcome, until Ctrl-C or the timeout."""
    try:
        asyncio.run(_watch_agent(run, agent, timeout_s=timeout_s))
    except KeyboardInterrupt:
        # Ctrl-C is how this command is meant to end.
        run.output.say(f"stopped watching {agent}")


async def _watch_agent(run: Session, agent: str, *, timeout_s: float | None) -> None:
    from gcdial.errors import ChannelUnavailableError
    from gcdial.monitor.channel import NotificationChannel, user_topic
    from gcdial.monitor.follow import MonitorMode
    from gcdial.monitor.polling import get_conversation

    inbox: asyncio.Queue[Mapping[str, Any] | BaseException] = asyncio.Queue()
    calls: dict[str, dict[str, Any]] = {}
    async with run.async_client() as client:
        user = await client.agents.get(agent)
        transport = client.transport

        async def catch_up() -> None:
            # After a reconnect, what the gap hid: one GET per call still going.
            for conversation_id in list(calls):
                inbox.put_nowait(await get_conversation(transport, conversation_id))

        channel = NotificationChannel(
            transport,
            on_conversation=inbox.put_nowait,
            on_reconnected=catch_up,
            on_lost=inbox.put_nowait,
        )
        try:
            await channel.open()
        except ChannelUnavailableError as exc:
            # The library's hint (poll instead) does not apply: new calls are only announced.
            exc.hint = (
                "`watch --agent` learns of new calls from notifications only: give the OAuth "
                "client's role the notifications permission, or free a channel (20 per user or "
                "app). `gcdial watch ID` can still follow one call, by polling."
            )
            raise
        try:
            await channel.subscribe([user_topic(user.id)])
            run.output.say(
                f"watching every call of {user.label} (by {MonitorMode.WEBSOCKET}); Ctrl-C to stop",
                style="dim",
            )
            async with asyncio.timeout(timeout_s):
                while True:
                    item = await inbox.get()
                    if isinstance(item, BaseException):
                        raise item
                    _on_snapshot(run, calls, item)
        except TimeoutError:
            run.output.say(f"stopped watching {user.label} after {timeout_s:g} s")
        finally:
            await channel.close()


def _on_snapshot(
    run: Session, calls: dict[str, dict[str, Any]], snapshot: Mapping[str, Any]
) -> None:
    """Print what one conversation snapshot changed, and the call's outcome once it is over."""
    from gcdial.monitor.events import events_between, is_over, merge
    from gcdial.monitor.outcome import classify

    conversation_id = snapshot.get("id")
    if not isinstance(conversation_id, str):
        return
    before = calls.get(conversation_id)
    state = merge(before, snapshot)
    for event in events_between(before, snapshot):
        _show_event(run, conversation_id, event)
    if is_over(state):
        calls.pop(conversation_id, None)
        if not is_over(before):
            _show_outcome(run, conversation_id, classify(state))
    else:
        calls[conversation_id] = state


def _show_event(run: Session, conversation_id: str, event: CallEvent) -> None:
    from gcdial.cli.live import describe_event
    from gcdial.cli.render import clock

    if run.output.json_mode:
        run.output.data(event.to_dict())
        return
    when = clock(event.at, millis=True, zone=True)
    run.output.show(Text(f"{when}  {conversation_id}  {describe_event(event)}"))


def _show_outcome(run: Session, conversation_id: str, outcome: Outcome) -> None:
    from gcdial.cli.live import describe_outcome

    if run.output.json_mode:
        run.output.data(outcome.to_dict())
        return
    run.output.show(Text(f"{conversation_id}  {describe_outcome(outcome)}", style="bold"))
