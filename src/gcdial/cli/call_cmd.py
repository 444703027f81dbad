"""``gcdial call``: place one call, and with ``--wait`` follow it to its outcome.

The command as typer declares it (options, help); what it does is :func:`gcdial.cli.placing.place`.
``status``, ``hangup`` and ``watch`` live in :mod:`gcdial.cli.watch_cmd`.
"""

from typing import Annotated

import typer

from gcdial._shared import DEFAULT_RESOLVE_TIMEOUT_S, DEFAULT_WRAPUP_TIMEOUT_S
from gcdial.cli.local_gate import CALLING_WINDOW_ENV, DEFAULT_CALLING_WINDOW
from gcdial.cli.options import JsonOpt, SandboxOpt, VerboseOpt
from gcdial.cli.placing import place
from gcdial.cli.session import global_options

ToArg = Annotated[
    str,
    typer.Argument(
        help="Number to dial: E.164 (+14155550100), or national with --country.",
        show_default=False,
    ),
]


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
    wrapup_timeout: Annotated[
        float,
        typer.Option(
            "--wrapup-timeout",
            help="With --wait: how long to wait for the agent's wrap-up code after the call "
            "(seconds; 0: do not wait). Only queue calls (--queue, or setting queue_id) are "
            "waited for, unless the setting wrapup_non_acd is on.",
        ),
    ] = DEFAULT_WRAPUP_TIMEOUT_S,
    hangup_after: Annotated[
        float | None,
        typer.Option(
            "--hangup-after",
            help="With --wait: hang up S seconds after the customer answers.",
            show_default=False,
        ),
    ] = None,
    resolve_timeout: Annotated[
        float,
        typer.Option(
            "--resolve-timeout",
            help="When the create-call answer is lost: how long to look for the call (seconds).",
        ),
    ] = DEFAULT_RESOLVE_TIMEOUT_S,
    window: Annotated[
        str,
        typer.Option(
            "--window",
            envvar=CALLING_WINDOW_ENV,
            help="Calling window in the customer's local time (HH:MM-HH:MM; 00:00-24:00: any "
            "hour). The zone is the number's, or --timezone.",
        ),
    ] = DEFAULT_CALLING_WINDOW,
    any_hour: Annotated[
        bool,
        typer.Option(
            "--any-hour",
            help="Dial whatever the customer's local time (--sandbox implies it).",
            show_default=False,
        ),
    ] = False,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone",
            help="The customer's own time zone (IANA, e.g. America/New_York), when the "
            "number's is not theirs or is unknown.",
            show_default=False,
        ),
    ] = None,
    dnc: Annotated[
        str | None,
        typer.Option(
            "--dnc",
            help="Do-not-call file (one number per line, as campaign --dnc): refuse its numbers.",
            show_default=False,
        ),
    ] = None,
    json: JsonOpt = False,
    sandbox: SandboxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Ring AGENT's phone, then connect them to the number TO.

    Prints the conversation id. The call is sent at most once, tagged with an attempt id. When
    its answer is lost, gcdial finds out by itself (up to --resolve-timeout): "placed" (exit 0, or
    the outcome with --wait), "not placed: safe to dial again" (exit 40), or "still unknown"
    (exit 5: do not dial again; check later with `gcdial resolve`).

    Before the call the customer's local time must be inside --window and the number not in
    --dnc (else exit 4), and the agent must have no live call from another `gcdial call` or a
    campaign on this machine (else exit 7). Without --wait the agent stays held for at most 2
    minutes after the call is placed, or until Genesys says the call has ended.
    """
    place(
        global_options(ctx),
        to=to, agent=agent, from_number=from_number, from_name=from_name, queue=queue, attr=attr,
        label=label, uui=uui, no_check=no_check, country=country, dry_run=dry_run, wait=wait,
        timeout=timeout, wrapup_timeout=wrapup_timeout, hangup_after=hangup_after,
        resolve_timeout=resolve_timeout, window=window, any_hour=any_hour, timezone=timezone,
        dnc=dnc, json=json, sandbox=sandbox, verbose=verbose,
    )  # fmt: skip
