"""``gcdial emulator``: run the local Genesys Cloud emulator."""

import typer

app = typer.Typer(help="Run the local Genesys Cloud emulator (the sandbox).", no_args_is_help=True)
