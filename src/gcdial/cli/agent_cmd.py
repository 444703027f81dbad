"""``gcdial agent show|find``: look an agent up and judge whether a call can be placed for them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from gcdial.cli.options import JsonOpt, SandboxOpt, VerboseOpt
from gcdial.cli.session import session

if TYPE_CHECKING:
    from gcdial.agents import AgentReadiness
    from gcdial.client import Client
    from gcdial.models import User

app = typer.Typer(help="Look up agents: profile, station, presence.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    agent: Annotated[str, typer.Argument(help="The agent's user id or email.", show_default=False)],
    json: JsonOpt = False,
    sandbox: SandboxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show an agent's profile, station and presence, and whether a call can be placed for them.

    Exits 7 when the agent cannot take a call now (inactive, no station, or a presence or
    routing status the readiness policy refuses), saying what to fix.
    """
    from gcdial.cli.exitcodes import ExitCode
    from gcdial.cli.render import agent_table
    from gcdial.errors import AgentNotReadyError

    with session(ctx, json=json, sandbox=sandbox, verbose=verbose) as run:
        client = run.client()
        user = client.agents.get(agent)
        problem: AgentNotReadyError | None = None
        readiness: AgentReadiness | None = None
        try:
            readiness = client.agents.check(user)
        except AgentNotReadyError as exc:
            problem = exc
        if readiness is not None and not readiness.ready:
            problem = readiness.error()
        notes = readiness.notes if readiness is not None else ()
        data: dict[str, Any] = {
            "agent": user.to_wire(),
            "ready": problem is None,
            "reason": problem.reason if problem is not None else None,
            "problem": problem.message if problem is not None else None,
            "notes": list(notes),
            "station": readiness.station.to_wire() if readiness is not None else None,
            "presence": readiness.presence if readiness is not None else None,
            "routingStatus": readiness.routing_status if readiness is not None else None,
        }
        verdict = "yes" if problem is None else f"no ({problem.reason})"
        table = agent_table(
            user,
            verdict=verdict,
            presence=readiness.presence if readiness is not None else None,
            station=readiness.station if readiness is not None else None,
        )
        run.output.result(data, table)
        for note in notes:
            run.output.warn(note)
        if problem is not None:
            run.output.fail(str(problem))
            raise typer.Exit(int(ExitCode.AGENT_NOT_READY))


@app.command("find")
def find(
    ctx: typer.Context,
    text: Annotated[
        str,
        typer.Argument(help="An email address, or text in the agent's name.", show_default=False),
    ],
    json: JsonOpt = False,
    sandbox: SandboxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Find agents by exact email or by part of their name or email."""
    from rich.table import Table

    from gcdial.cli.exitcodes import ExitCode

    with session(ctx, json=json, sandbox=sandbox, verbose=verbose) as run:
        users = search_users(run.client(), text)
        table = Table()
        # An id is never cut short, even on a narrow terminal; the other columns fold instead.
        table.add_column("id", no_wrap=True, min_width=36)
        for column in ("name", "email", "state"):
            table.add_column(column, overflow="fold")
        for user in users:
            table.add_row(user.id, user.name or "-", user.email or "-", user.state or "-")
        run.output.result({"results": [u.to_wire() for u in users]}, table if users else None)
        if not users:
            run.output.warn(f"no agent matches {text!r}")
            raise typer.Exit(int(ExitCode.REFUSED))


def search_users(client: Client, text: str) -> list[User]:
    """Agents whose email or full name is exactly ``text`` (case-insensitive)."""
    from gcdial.agents import USER_EXPAND
    from gcdial.models import UserSearchResults

    field_names = ["email"] if "@" in text else ["email", "name"]
    body = {
        "query": [{"type": "EXACT", "fields": field_names, "value": text.strip()}],
        "expand": USER_EXPAND.split(","),
    }
    data = client.transport.request_json("POST", "/api/v2/users/search", json=body, idempotent=True)
    return UserSearchResults.model_validate(data).results
