"""Root of the ``gcdial`` command: registers one module per command group.

Command modules import the heavy parts of gcdial inside their functions, so that ``gcdial --help``
starts fast.
"""

import typer

from gcdial.cli import emulator_cmd

app = typer.Typer(
    name="gcdial",
    help="Place outbound calls on behalf of Genesys Cloud agents, safely.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


app.add_typer(emulator_cmd.app, name="emulator")


@app.callback()
def _root() -> None:
    """Place outbound calls on behalf of Genesys Cloud agents, safely."""


@app.command()
def demo() -> None:
    """Place a call on behalf of a demo agent in the built-in sandbox and show it."""
    typer.echo(
        "gcdial demo: the sandbox call lands with the 'place a call' work; nothing to show yet."
    )


def run() -> None:
    """Console-script entry point."""
    app()
