"""``gcdial resolve``: run the resolution ladder again for an earlier attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from gcdial.cli.options import JsonOpt, SandboxOpt, VerboseOpt
from gcdial.cli.session import session

DEFAULT_WINDOW_S = 300.0


def _parse_at(value: str) -> datetime:
    from datetime import UTC

    from gcdial.errors import InputError

    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"--at {value!r} is not an ISO 8601 time.",
            hint="Give it as gcdial printed it, e.g. --at 2026-11-30T10:15:00+00:00.",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def resolve(
    ctx: typer.Context,
    attempt_id: Annotated[
        str | None,
        typer.Argument(
            help="The attempt id (attributes.gcdialAttemptId) `gcdial call` printed.",
            show_default=False,
        ),
    ] = None,
    agent: Annotated[
        str,
        typer.Option(
            "--agent", "-a", help="The agent who dialed: id or email.", show_default=False
        ),
    ] = "",
    to: Annotated[
        str | None,
        typer.Option(
            "--to", help="The number dialed (needed without an attempt id).", show_default=False
        ),
    ] = None,
    at: Annotated[
        str,
        typer.Option(
            "--at",
            help="When the call was sent (ISO 8601, as gcdial printed it).",
            show_default=False,
        ),
    ] = "",
    window: Annotated[
        float,
        typer.Option("--window", help="How far before --at to search (seconds)."),
    ] = DEFAULT_WINDOW_S,
    json: JsonOpt = False,
    sandbox: SandboxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Find out whether an earlier call attempt placed a call: placed, not placed, or unknown.

    By attempt id (`gcdial resolve ID --agent A --at TIME`), or by number
    (`gcdial resolve --agent A --to NUMBER --at TIME`). Exit 0 placed, 40 not placed (safe to dial
    again), 5 still unknown. Needs the analytics:conversationDetail:view permission.
    """
    with session(ctx, json=json, sandbox=sandbox, verbose=verbose) as run:
        from gcdial.errors import InputError

        if not agent or not at:
            raise InputError(
                "gcdial resolve needs --agent and --at.",
                hint="Copy the command `gcdial call` printed: gcdial resolve ID --agent A --to N "
                "--at TIME.",
            )
        if attempt_id is None and to is None:
            raise InputError("Give the attempt id, or --to NUMBER to search by number.")
        if not window > 0:
            raise InputError(f"--window must be a positive number of seconds, not {window:g}.")
        # Deferred for start-up speed: the ladder pulls in the client and the monitor.
        from gcdial.cli.live import ResolveRequest, resolve_later

        request = ResolveRequest(
            attempt_id=attempt_id, agent=agent, to=to, at=_parse_at(at), window_s=window
        )
        code = resolve_later(run, request)
        raise typer.Exit(int(code))
