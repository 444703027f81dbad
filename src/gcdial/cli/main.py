"""Root of the ``gcdial`` command: global options, and one module per command group.

Command modules import the heavy parts of gcdial inside their functions, so that ``gcdial --help``
starts fast.
"""

from __future__ import annotations

import sys

import typer

from gcdial.cli import (
    agent_cmd,
    call_cmd,
    campaign_cmd,
    demo_cmd,
    doctor_cmd,
    emulator_cmd,
    login_cmd,
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
    add_completion=False,
    rich_markup_mode=None,
)


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
app.command("status")(call_cmd.status)
app.command("hangup")(call_cmd.hangup)
app.command("watch")(call_cmd.watch)
app.add_typer(agent_cmd.app, name="agent")
app.command("doctor")(doctor_cmd.doctor)
app.command("login")(login_cmd.login)
app.command("demo")(demo_cmd.demo)
app.add_typer(emulator_cmd.app, name="emulator")
app.add_typer(campaign_cmd.app, name="campaign")


def run() -> None:
    """Console-script entry point; the last guard against a traceback reaching the user.

    A reader that went away (``gcdial ... | head``) ends the run quietly, wherever it is noticed:
    in a command body (:func:`gcdial.cli.session.session`), here, or at the final flush.
    """
    from gcdial.cli.output import reader_gone, reader_went_away

    try:
        app()
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
