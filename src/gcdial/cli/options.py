"""Options shared by several commands, declared once.

``--json``, ``--sandbox`` and ``-v`` are global options (before the verb) and are also accepted
after the verb, where people tend to type them; either place turns them on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Write machine-readable JSON to stdout.", show_default=False)
]
SandboxOpt = Annotated[
    bool,
    typer.Option(
        "--sandbox",
        help="Run against the built-in emulator, started in-process for this command.",
        show_default=False,
    ),
]
VerboseOpt = Annotated[
    bool,
    typer.Option(
        "--verbose", "-v", help="Debug logging on stderr (secrets redacted).", show_default=False
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option("--profile", help="Named profile from the config file.", show_default=False),
]
RegionOpt = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="Genesys Cloud region: a name (eu_west_1), a domain (mypurecloud.ie) or a URL.",
        show_default=False,
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="API base URL (overrides the region), e.g. an emulator's http://127.0.0.1:8765.",
        show_default=False,
    ),
]
ClientIdOpt = Annotated[
    str | None,
    typer.Option("--client-id", help="OAuth client id (client credentials).", show_default=False),
]
ClientSecretFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--client-secret-file",
        help="File holding the OAuth client secret (the secret itself is never a flag).",
        show_default=False,
        dir_okay=False,
    ),
]
