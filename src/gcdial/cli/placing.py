"""What ``gcdial call`` does with its options, without typer: checks them, then places the call.

:mod:`gcdial.cli.call_cmd` declares the command for typer; :mod:`gcdial.cli.fastpath` reads the
plain forms of the same command line without it (typer, building and reading ~30 options, is a
tenth of one call's CPU). Both end here, in :func:`place`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from gcdial._shared import DEFAULT_RESOLVE_TIMEOUT_S, DEFAULT_WRAPUP_TIMEOUT_S
from gcdial.cli.local_gate import DEFAULT_CALLING_WINDOW
from gcdial.cli.session import GlobalOptions, Session, exit_with, session_for

if TYPE_CHECKING:
    from rich.text import Text

    from gcdial.calls import CallParams
    from gcdial.campaign.rules import Rules
    from gcdial.config import Settings
    from gcdial.http import PreparedRequest


@contextlib.contextmanager
def option_value(name: str) -> Iterator[None]:
    """Checks of one option's value: an InputError raised inside names the option it came from.

    The library knows values, not the flags they were given with; the CLI adds the flag, so that
    ``--from 12`` says it was ``--from`` that was wrong.
    """
    from gcdial.errors import InputError

    try:
        yield
    except InputError as exc:
        if exc.message.startswith(name):
            raise
        raise InputError(f"{name}: {exc.message}", hint=exc.hint) from exc


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

    from rich.text import Text

    lines = [f"{request.method} {request.url}"]
    lines += [f"{name}: {value}" for name, value in sorted(request.headers.items())]
    lines.append("")
    if request.body is not None:
        lines.append(json.dumps(request.body, indent=2, ensure_ascii=False))
    return Text("\n".join(lines))


def _dry_run(run: Session, agent: str, params: CallParams) -> None:
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


def _user_token(settings: Settings) -> bool | None:
    """Whether the credentials are a user token (None when there are none: a dry run needs
    none). Nothing is sent: the token itself is fetched only on a first request."""
    from gcdial.auth import auth_from_settings, is_user_token
    from gcdial.errors import GcdialError

    try:
        return is_user_token(auth_from_settings(settings))
    except GcdialError:
        return None


def place(
    options: GlobalOptions,
    *,
    to: str,
    agent: str,
    from_number: str | None = None,
    from_name: str | None = None,
    queue: str | None = None,
    attr: list[str] | None = None,
    label: str | None = None,
    uui: str | None = None,
    no_check: bool = False,
    country: str | None = None,
    dry_run: bool = False,
    wait: bool = False,
    timeout: float | None = None,
    wrapup_timeout: float = DEFAULT_WRAPUP_TIMEOUT_S,
    hangup_after: float | None = None,
    resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT_S,
    window: str = DEFAULT_CALLING_WINDOW,
    any_hour: bool = False,
    timezone: str | None = None,
    dnc: str | None = None,
    json: bool = False,
    sandbox: bool = False,
    verbose: bool = False,
) -> None:
    """``gcdial call``, given its options (those after the verb added to ``options``).

    Ends with the command's exit code (typer's Exit under typer, else SystemExit), or returns
    (exit code 0) after a dry run."""
    with session_for(options, json=json, sandbox=sandbox, verbose=verbose) as run:
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
        raise exit_with(int(dial_and_report(run, request)))


def _check_numbers(params: CallParams, default_country: str) -> None:
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
) -> Rules | None:
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
