"""``gcdial call``: place one call, and with ``--wait`` follow it to its outcome.

``status``, ``hangup`` and ``watch`` live in :mod:`gcdial.cli.watch_cmd`.
"""

from typing import TYPE_CHECKING, Annotated

import typer

from gcdial._shared import DEFAULT_RESOLVE_TIMEOUT_S, DEFAULT_WRAPUP_TIMEOUT_S
from gcdial.cli.local_gate import CALLING_WINDOW_ENV, DEFAULT_CALLING_WINDOW
from gcdial.cli.options import JsonOpt, SandboxOpt, VerboseOpt, option_value
from gcdial.cli.session import Session, session

if TYPE_CHECKING:
    from rich.text import Text

    from gcdial.calls import CallParams
    from gcdial.campaign.rules import Rules
    from gcdial.config import Settings
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


def render_request(request: "PreparedRequest") -> "Text":
    """The request as an HTTP message: request line, headers, blank line, JSON body."""
    import json

    from rich.text import Text

    lines = [f"{request.method} {request.url}"]
    lines += [f"{name}: {value}" for name, value in sorted(request.headers.items())]
    lines.append("")
    if request.body is not None:
        lines.append(json.dumps(request.body, indent=2, ensure_ascii=False))
    return Text("\n".join(lines))


def _dry_run(run: Session, agent: str, params: "CallParams") -> None:
    """Show the exact request, attempt tag included, without credentials or a single request."""
    from gcdial.agents import is_email
    from gcdial.calls import preview_create
    from gcdial.resolve import new_attempt_id

    settings = run.settings()
    attempt_id = new_attempt_id()
    tagged = params.with_attribute(settings.attempt_attribute, attempt_id)
    request = preview_create(settings, agent, tagged, user_token=_user_token(settings))
    payload = request.to_dict()
    payload["sent"] = False
    payload["attemptId"] = attempt_id
    run.output.result(payload, render_request(request))
    run.output.say(
        f"attempt id {attempt_id} (attributes.{settings.attempt_attribute}): a real call gets a "
        "fresh one, so it can be found again if the answer is lost.",
        style="dim",
    )
    if is_email(agent) and "{userId}" in request.url:
        run.output.say(
            f"{{userId}} is {agent}'s user id: a real call looks it up first "
            "(POST /api/v2/users/search).",
            style="dim",
        )
    if "{region}" in request.url:
        run.output.say("{region} is your Genesys Cloud region (setting region).", style="dim")
    run.output.say("dry run: nothing was sent.", style="dim")


def _user_token(settings: "Settings") -> bool | None:
    """Whether the credentials are a user token (None when there are none: a dry run needs
    none). Nothing is sent: the token itself is fetched only on a first request."""
    from gcdial.auth import auth_from_settings, is_user_token
    from gcdial.errors import GcdialError

    try:
        return is_user_token(auth_from_settings(settings))
    except GcdialError:
        return None


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
    with session(ctx, json=json, sandbox=sandbox, verbose=verbose) as run:
        _check_wait_options(wait=wait, timeout=timeout, hangup_after=hangup_after)
        _check_positive("--resolve-timeout", resolve_timeout)
        if not wrapup_timeout >= 0:
            from gcdial.errors import InputError

            raise InputError(
                f"--wrapup-timeout must be 0 or more seconds, not {wrapup_timeout:g}.",
                hint="Use 0 to end as soon as the call does.",
            )
        from gcdial.calls import CallParams  # deferred for start-up speed, like every command

        params = CallParams(
            to=to,
            caller_id=from_number,
            caller_id_name=from_name,
            queue=queue,
            attributes=parse_attributes(attr) if attr else None,
            label=label,
            uui=uui,
            default_country=country,
        )
        # A bad number names the option it came from, in a dry run too.
        _check_numbers(params, run.settings().default_country)
        if dry_run:
            _dry_run(run, agent, params)
            return
        # Refuse a bad number or body before any request (the agent check included) is sent.
        params.body(default_country=run.settings().default_country)
        rules = _rules(
            run, window=window, any_hour=any_hour or run.emulator is not None, timezone=timezone,
            dnc=dnc, country=country,
        )  # fmt: skip
        # Deferred for start-up speed: the live view pulls in the monitor and websockets.
        from gcdial.cli.live import DialRequest, dial_and_report

        request = DialRequest(
            agent=agent,
            params=params,
            check_agent=not no_check,
            follow=wait,
            timeout_s=timeout,
            hangup_after=hangup_after,
            resolve_timeout_s=resolve_timeout,
            wrapup_timeout_s=wrapup_timeout if wait else 0.0,
            rules=rules,
            time_zone=timezone,
            window_shown=_window_shown(window, any_hour or run.emulator is not None),
        )
        raise typer.Exit(int(dial_and_report(run, request)))


def _check_numbers(params: "CallParams", default_country: str) -> None:
    from gcdial.errors import InvalidPhoneNumberError
    from gcdial.phone import to_e164

    country = params.default_country or default_country
    for name, number in (("TO", params.to), ("--from", params.caller_id)):
        if number:
            with option_value(name):
                try:
                    to_e164(number, default_country=country)
                except InvalidPhoneNumberError as exc:
                    raise exc.country_from(f"--country, now {country}; e.g. --country GB") from None


def _check_positive(name: str, value: float) -> None:
    from gcdial.errors import InputError

    if not value > 0:
        raise InputError(f"{name} must be a positive number of seconds, not {value:g}.")


def _check_wait_options(*, wait: bool, timeout: float | None, hangup_after: float | None) -> None:
    from gcdial.errors import InputError

    for name, value in (("--timeout", timeout), ("--hangup-after", hangup_after)):
        if value is None:
            continue
        if not wait:
            raise InputError(f"{name} only makes sense with --wait.", hint="Add --wait.")
        if not value > 0:
            raise InputError(f"{name} must be a positive number of seconds, not {value:g}.")


def _window_shown(window: str, any_hour: bool) -> str:
    return "any hour" if any_hour else window


def _rules(
    run: Session,
    *,
    window: str,
    any_hour: bool,
    timezone: str | None,
    dnc: str | None,
    country: str | None,
) -> "Rules | None":
    """The calling rules of this call, as the options say (each bad value names its option);
    None when there is nothing to check (any hour, no --dnc): the rules' modules stay unloaded."""
    if dnc is None and (any_hour or window.strip() == "00:00-24:00"):
        if timezone is not None:
            _check_zone(timezone)
        return None
    from gcdial.campaign.rules import CallingWindow, DoNotCallList, Rules, UnknownZone

    with option_value("--window"):
        parsed = CallingWindow.parse("00:00-24:00" if any_hour else window)
    if timezone is not None:
        _check_zone(timezone)
    listed = DoNotCallList()
    if dnc is not None:
        listed = DoNotCallList.load(dnc, default_country=country or run.settings().default_country)
    return Rules(
        window=parsed,
        dnc=listed,
        unknown_zone=UnknownZone.ANY if parsed.all_day else UnknownZone.SKIP,
    )


def _check_zone(timezone: str) -> None:
    from gcdial.campaign.contact import is_valid_time_zone
    from gcdial.errors import InputError

    if not is_valid_time_zone(timezone):
        raise InputError(
            f"--timezone {timezone!r} is not a time zone.",
            hint="Use an IANA zone name such as America/New_York or Europe/London.",
        )
