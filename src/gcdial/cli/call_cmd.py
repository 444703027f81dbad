"""``gcdial call``: place one call, and with ``--wait`` follow it to its outcome.

``status``, ``hangup`` and ``watch`` live in :mod:`gcdial.cli.watch_cmd`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from gcdial.cli.options import JsonOpt, SandboxOpt, VerboseOpt, option_value
from gcdial.cli.session import Session, session

if TYPE_CHECKING:
    from gcdial.agents import AgentReadiness
    from gcdial.errors import CallOutcomeUnknownError
    from gcdial.http import PreparedRequest

ToArg = Annotated[
    str,
    typer.Argument(
        help="Number to dial: E.164 (+14155550100), or national with --country.",
        show_default=False,
    ),
]


def parse_attributes(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings as a dict; InputError naming the bad one otherwise."""
    from gcdial.errors import InputError

    attributes: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(
                f"--attr {pair!r} is not of the form KEY=VALUE.",
                hint="Write each attribute as --attr crmId=12345 (repeat --attr for more).",
            )
        attributes[key.strip()] = value
    return attributes


def render_request(request: PreparedRequest) -> Text:
    """The request as an HTTP message: request line, headers, blank line, JSON body."""
    import json

    lines = [f"{request.method} {request.url}"]
    lines += [f"{name}: {value}" for name, value in sorted(request.headers.items())]
    lines.append("")
    if request.body is not None:
        lines.append(json.dumps(request.body, indent=2, ensure_ascii=False))
    return Text("\n".join(lines))


def _dry_run(run: Session, agent: str, details: dict[str, Any]) -> None:
    from gcdial.agents import is_email

    client = run.client()
    # resolve=False: an email is not looked up, so not even a token request leaves the machine.
    request = client.calls.build_create_request(agent, resolve=False, **details)
    payload = request.to_dict()
    payload["sent"] = False
    run.output.result(payload, render_request(request))
    if is_email(agent) and "{userId}" in request.url:
        run.output.say(
            f"{{userId}} is {agent}'s user id: a real call looks it up first "
            "(POST /api/v2/users/search).",
            style="dim",
        )
    run.output.say("dry run: nothing was sent.", style="dim")


def call(
    ctx: typer.Context,
    to: ToArg,
    agent: Annotated[
        str,
        typer.Option(
            "--agent",
            "-a",
            help="The agent whose phone rings first: user id or email.",
            show_default=False,
        ),
    ],
    from_number: Annotated[
        str | None,
        typer.Option("--from", help="Caller id shown to the customer.", show_default=False),
    ] = None,
    from_name: Annotated[
        str | None,
        typer.Option(
            "--from-name", help="Caller id name shown to the customer.", show_default=False
        ),
    ] = None,
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue", help="Queue id to place the call on behalf of.", show_default=False
        ),
    ] = None,
    attr: Annotated[
        list[str] | None,
        typer.Option(
            "--attr",
            help="Participant attribute KEY=VALUE (repeatable).",
            show_default=False,
        ),
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="Conversation label.", show_default=False)
    ] = None,
    uui: Annotated[
        str | None, typer.Option("--uui", help="User-to-user information.", show_default=False)
    ] = None,
    no_check: Annotated[
        bool,
        typer.Option(
            "--no-check",
            help="Skip the agent check (exists, active, has a station) before dialing.",
            show_default=False,
        ),
    ] = False,
    country: Annotated[
        str | None,
        typer.Option(
            "--country",
            help="Country for national numbers (US, GB, ...); default: setting default_country.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the exact request and send nothing.", show_default=False
        ),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Follow the call live until it ends; the exit code tells the outcome.",
            show_default=False,
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", help="With --wait: stop waiting after S seconds.", show_default=False
        ),
    ] = None,
    hangup_after: Annotated[
        float | None,
        typer.Option(
            "--hangup-after",
            help="With --wait: hang up S seconds after the customer answers.",
            show_default=False,
        ),
    ] = None,
    json: JsonOpt = False,
    sandbox: SandboxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Ring AGENT's phone, then connect them to the number TO.

    Prints the conversation id. The call is sent at most once: when its outcome is unknown
    (exit 5) check with `gcdial status` before dialing again.
    """
    with session(ctx, json=json, sandbox=sandbox, verbose=verbose) as run:
        _check_wait_options(wait=wait, timeout=timeout, hangup_after=hangup_after)
        details: dict[str, Any] = {
            "to": to,
            "caller_id": from_number,
            "caller_id_name": from_name,
            "queue": queue,
            "attributes": parse_attributes(attr) if attr else None,
            "label": label,
            "uui": uui,
            "default_country": country,
        }
        _validate(run, details)
        if dry_run:
            _dry_run(run, agent, details)
            return
        client = run.client()
        if wait:
            from gcdial.cli.live import place_and_follow

            code = place_and_follow(
                run,
                agent,
                details,
                check_agent=not no_check,
                timeout_s=timeout,
                hangup_after=hangup_after,
            )
            raise typer.Exit(int(code))
        if not no_check:
            readiness = client.agents.check(agent)
            agent = readiness.agent.id
            show_readiness(run, readiness)
        try:
            created = client.calls.create(agent, check_agent=False, **details)
        except KeyboardInterrupt:
            request = client.calls.build_create_request(agent, resolve=False, **details)
            raise interrupted_while_placing(request) from None
        run.output.ok(f"call placed (accepted by Genesys Cloud): conversation {created.id}")
        run.output.result(
            {"id": created.id, "selfUri": created.self_uri, "placed": True}, created.id
        )
        if not run.output.json_mode:
            run.output.say(
                f"follow it with: gcdial watch {created.id}   (or gcdial status {created.id})",
                style="dim",
            )


def show_readiness(run: Session, readiness: AgentReadiness) -> None:
    """Say that the agent checked out before dialing: station, presence, and any notes."""
    run.output.ok(
        f"agent {readiness.agent.label}: station {readiness.station.name or 'set'}, "
        f"presence {readiness.presence or 'unknown'}"
    )
    for note in readiness.notes:
        run.output.warn(note)


def interrupted_while_placing(request: PreparedRequest) -> CallOutcomeUnknownError:
    """Ctrl-C during the create-call POST: it may have gone out, so the outcome is unknown."""
    from datetime import UTC, datetime

    from gcdial.errors import CallOutcomeUnknownError

    return CallOutcomeUnknownError(
        method=request.method,
        url=request.url,
        body=request.body,
        sent_at=datetime.now(UTC),
        cause=None,
        reason="interrupted (Ctrl-C) while the call request may have been on its way",
    )


def _validate(run: Session, details: dict[str, Any]) -> None:
    """Refuse a bad number or body before any request (the agent check included) is sent."""
    from gcdial.calls import build_create_body
    from gcdial.phone import to_e164

    country = details.get("default_country") or run.settings().default_country
    for name, key in (("TO", "to"), ("--from", "caller_id")):
        if details.get(key):
            with option_value(name):
                to_e164(details[key], default_country=country)
    build_create_body(**{**details, "default_country": country})


def _check_wait_options(*, wait: bool, timeout: float | None, hangup_after: float | None) -> None:
    from gcdial.errors import InputError

    for name, value in (("--timeout", timeout), ("--hangup-after", hangup_after)):
        if value is None:
            continue
        if not wait:
            raise InputError(f"{name} only makes sense with --wait.", hint="Add --wait.")
        if not value > 0:
            raise InputError(f"{name} must be a positive number of seconds, not {value:g}.")
