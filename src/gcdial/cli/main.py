"""Root of the ``gcdial`` command: global options, and one module per command group.

Command modules import the heavy parts of gcdial inside their functions, so that ``gcdial --help``
starts fast.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperOption

from gcdial.cli import (
    agent_cmd,
    call_cmd,
    campaign_cmd,
    config_cmd,
    demo_cmd,
    doctor_cmd,
    emulator_cmd,
    login_cmd,
    resolve_cmd,
    serve_cmd,
    watch_cmd,
)
from gcdial.cli.options import (
    BaseUrlOpt,
    ClientIdOpt,
    ClientSecretFileOpt,
    JsonOpt,
    ProfileOpt,
    RegionOpt,
    SandboxOpt,
    VerboseOpt,
)
from gcdial.cli.session import GlobalOptions

app = typer.Typer(
    name="gcdial",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        from gcdial import __version__

        typer.echo(f"gcdial {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    base_url: BaseUrlOpt = None,
    client_id: ClientIdOpt = None,
    client_secret_file: ClientSecretFileOpt = None,
    sandbox: SandboxOpt = False,
    json: JsonOpt = False,
    verbose: VerboseOpt = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print gcdial's version and exit.",
            callback=_show_version,
            is_eager=True,
            show_default=False,
        ),
    ] = False,
) -> None:
    """Place outbound calls on behalf of Genesys Cloud agents, safely.

    Credentials come from GENESYSCLOUD_OAUTHCLIENT_ID / GENESYSCLOUD_OAUTHCLIENT_SECRET /
    GENESYSCLOUD_REGION, a .env file or a profile; try `gcdial demo` or `--sandbox` first,
    and `gcdial doctor` when something does not work.
    """
    ctx.obj = GlobalOptions(
        profile=profile,
        region=region,
        base_url=base_url,
        client_id=client_id,
        client_secret_file=client_secret_file,
        sandbox=sandbox,
        json=json,
        verbose=verbose,
    )


app.command("call")(call_cmd.call)
app.command("resolve")(resolve_cmd.resolve)
app.command("status")(watch_cmd.status)
app.command("hangup")(watch_cmd.hangup)
app.command("watch")(watch_cmd.watch)
app.add_typer(agent_cmd.app, name="agent")
app.command("doctor")(doctor_cmd.doctor)
app.command("login")(login_cmd.login)
app.command("logout")(config_cmd.logout)
app.add_typer(config_cmd.app, name="config")
app.command("demo")(demo_cmd.demo)
app.add_typer(emulator_cmd.app, name="emulator")
app.add_typer(campaign_cmd.app, name="campaign")
app.add_typer(serve_cmd.app, name="serve")


# What an option's value is, as help shows it (``--from NUMBER``); unlisted ones use their name.
_METAVARS = {
    "--agent": "AGENT",
    "--from": "NUMBER",
    "--from-name": "NAME",
    "--label": "TEXT",
    "--uui": "TEXT",
    "--window": "HH:MM-HH:MM",
    "--to": "NUMBER",
    "--attr": "KEY=VALUE",
    "--country": "CC",
    "--default-country": "CC",
    "--timeout": "SECONDS",
    "--hangup-after": "SECONDS",
    "--end": "TIME",
    "--max-attempts": "N",
    "--concurrency": "N",
    "--rate-limit": "N",
    "--retry-busy": "DURATION",
    "--retry-no-answer": "DURATION",
    "--fixture": "FILE",
    "--speed": "FACTOR",
    "--base-url": "URL",
    "--client-id": "ID",
    "--login-client-id": "ID",
    "--client-secret-file": "FILE",
    "--agents-file": "FILE",
    "--dnc": "FILE",
    "--output": "FILE",
    "--journal": "FILE",
    "--profile": "NAME",
    "--queue": "QUEUE_ID",
    "--phone-column": "COLUMN",
    "--fallback-timezone": "ZONE",
}


class _Argument(TyperArgument):
    """An argument shown the classic way: ``TO`` in the usage line and in the list, no type."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def _name_values(command: Any) -> None:
    """Give every argument and valued option of ``command`` (and its subcommands) a metavar.

    typer would show ``{to}``, ``<str>`` and ``<list[str]>``; help shows ``TO`` and
    ``--from NUMBER`` instead.
    """
    for param in command.params:
        if isinstance(param, TyperArgument):
            param.__class__ = _Argument  # same fields; only how it is displayed differs
            param.metavar = param.metavar or (param.name or "value").upper()
        elif isinstance(param, TyperOption) and not param.is_flag and param.metavar is None:
            long_names = [o for o in param.opts if o.startswith("--")]
            key = long_names[0] if long_names else ""
            described = getattr(param, "type_descriptor", None)  # typer >= 0.26
            choices = described.choices if described is not None and described.is_choice else None
            if choices:
                param.metavar = "[" + "|".join(str(getattr(c, "value", c)) for c in choices) + "]"
            else:
                param.metavar = _METAVARS.get(key) or (param.name or "value").upper()
    # typer's groups are not click.Group subclasses, but keep their subcommands the same way.
    subcommands: dict[str, Any] = getattr(command, "commands", None) or {}
    for sub in subcommands.values():
        _name_values(sub)


def command() -> Any:
    """The ``gcdial`` command as click runs it, its help tidied by :func:`_name_values`."""
    built = typer.main.get_command(app)
    _name_values(built)
    return built


def run() -> None:
    """Console-script entry point; the last guard against a traceback reaching the user.

    A reader that went away (``gcdial ... | head``) ends the run quietly, wherever it is noticed:
    in a command body (:func:`gcdial.cli.session.session`), here, or at the final flush.
    """
    from gcdial.cli.output import reader_gone, reader_went_away

    try:
        command()(prog_name="gcdial")
    except SystemExit as done:
        _flush_or_quit()
        raise done from None
    except BaseException as exc:
        if reader_went_away(exc):
            reader_gone()
        from gcdial.cli.errors import report
        from gcdial.cli.output import Output

        sys.exit(int(report(exc, Output())))


def _flush_or_quit() -> None:
    """Flush stdout now, so that a closed pipe is noticed here rather than at interpreter exit."""
    from gcdial.cli.output import reader_gone

    try:
        sys.stdout.flush()
    except BrokenPipeError:
        reader_gone()
